#![cfg_attr(fuzzing, no_main)]
edge_access_fuzz::fuzz_target!(edge_access_fuzz::token::app_token);
