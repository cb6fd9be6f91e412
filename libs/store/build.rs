//! The MongoDB contract tests exist only in a test build made with `MONGODB_URI` set: without
//! it they are not compiled at all (instead of passing without running), and the test
//! `mongodb_contract_suite_skipped` reports the skip.
fn main() {
    println!("cargo::rerun-if-env-changed=MONGODB_URI");
    println!("cargo::rustc-check-cfg=cfg(mongodb_uri)");
    if std::env::var("MONGODB_URI").is_ok_and(|uri| !uri.is_empty()) {
        println!("cargo::rustc-cfg=mongodb_uri");
    }
}
