//! Compile and evaluate on a realistic workload (see `examples/workload.rs`), and the
//! nested-group closure on a large directory. Run: `cargo xtask bench` (or
//! `cargo bench -p policy-core`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a failure panics, as in a test"
)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use policy_core::{Engine, GroupHierarchy, GroupId, Limits, Request};

#[path = "../examples/workload.rs"]
mod workload;

fn engine(c: &mut Criterion) {
    let w = workload::realistic();
    let document = w["document"].to_string();
    let request_json = w["request"].to_string();
    let large = workload::large().to_string();

    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    group.bench_function("realistic (50 apps, 10k-group directory)", |b| {
        b.iter(|| Engine::from_json(black_box(&document)).unwrap())
    });
    group.bench_function("1,000 apps / 10,000 policies", |b| {
        b.iter(|| Engine::from_json(black_box(&large)).unwrap())
    });
    group.finish();

    let engine = Engine::from_json(&document).unwrap();
    let request = Request::from_json(&request_json).unwrap();
    assert_eq!(engine.decide(&request).unwrap().outcome.as_str(), "allow");
    let mut group = c.benchmark_group("evaluate");
    group.bench_function("decide (24 policies, 150 groups, 5-deep nesting)", |b| {
        b.iter(|| engine.decide(black_box(&request)).unwrap().outcome)
    });
    let identity = engine.prepare_identity(request.identity.clone().unwrap());
    let mut anonymous = request.clone();
    anonymous.identity = None;
    assert_eq!(
        engine
            .decide_as(&anonymous, &identity)
            .unwrap()
            .outcome
            .as_str(),
        "allow"
    );
    group.bench_function("decide for a prepared identity (returning user)", |b| {
        b.iter(|| {
            engine
                .decide_as(black_box(&anonymous), black_box(&identity))
                .unwrap()
                .outcome
        })
    });
    group.bench_function("route the target (part of every decision)", |b| {
        b.iter(|| {
            engine
                .app_for(black_box(&request.target))
                .unwrap()
                .is_some()
        })
    });
    group.bench_function("prepare the identity (150 groups)", |b| {
        b.iter(|| engine.prepare_identity(black_box(request.identity.clone().unwrap())))
    });
    group.bench_function("evaluate with trace", |b| {
        b.iter(|| engine.evaluate(black_box(&request)).unwrap())
    });
    group.bench_function("parse request JSON", |b| {
        b.iter(|| Request::from_json(black_box(&request_json)).unwrap())
    });
    group.bench_function("parse request JSON through the tree", |b| {
        b.iter(|| Request::from_json_tree(black_box(&request_json)).unwrap())
    });
    group.bench_function("parse request JSON + decide", |b| {
        b.iter(|| {
            let r = Request::from_json(black_box(&request_json)).unwrap();
            engine.decide(&r).unwrap().outcome
        })
    });
    group.finish();
}

/// 200 direct groups over a 100,000-group / 1,000,000-edge directory, 20 referenced groups.
fn closure(c: &mut Criterion) {
    let mut rng = workload::Lcg::new(7);
    let n: u64 = 100_000;
    let id = |k: u64| GroupId::from_u128(0xa000_0000_0000_0000_0000_0000_0000_0000 | u128::from(k));
    // Ten levels of 10,000; each group has ~10 parents in the level above (the top has none).
    let mut edges = Vec::with_capacity(1_000_000);
    for child in 10_000..n {
        let level_start = (child / 10_000 - 1) * 10_000;
        for _ in 0..10 {
            edges.push((id(child), id(level_start + rng.below(10_000) as u64)));
        }
    }
    let referenced: Vec<GroupId> = (0..20).map(|k| id(k * 397)).collect();
    let mut group = c.benchmark_group("closure");
    group.sample_size(10);
    group.bench_function("compile 100k groups / 900k edges", |b| {
        b.iter(|| GroupHierarchy::new(black_box(&edges), &referenced, &Limits::default()).unwrap())
    });
    let hierarchy = GroupHierarchy::new(&edges, &referenced, &Limits::default()).unwrap();
    let user: Vec<GroupId> = (0..200)
        .map(|_| id(90_000 + rng.below(10_000) as u64))
        .collect();
    println!(
        "closure workload: {} edges, {} groups kept of {n}, {} of 20 referenced groups reached",
        edges.len(),
        hierarchy.kept_groups(),
        referenced
            .iter()
            .filter(|g| hierarchy.closure(&user).unwrap().contains(&hierarchy, **g))
            .count()
    );
    group.sample_size(20);
    group.bench_function("200 direct groups", |b| {
        b.iter(|| hierarchy.closure(black_box(&user)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, engine, closure);
criterion_main!(benches);
