//! The blob contract suite against a real S3-compatible server (moto), path-style addressing
//! (virtual-host URLs are checked in `apogee-blob`: the test host cannot resolve `<bucket>.localhost`).
#![allow(clippy::unwrap_used)]

use apogee_blob::{BlobStore, S3Blobs, S3Config, testsuite};
use apogee_tests::moto::Moto;

async fn bucket(moto: &Moto, name: &str, path_style: bool) -> S3Blobs {
    let blobs = S3Blobs::new(&S3Config {
        endpoint: moto.endpoint.clone(),
        bucket: name.into(),
        region: "us-east-1".into(),
        path_style,
        credentials: Some(("testing".into(), "testing".into())),
    })
    .unwrap();
    blobs.ensure_bucket().await.unwrap();
    blobs
}

async fn contract(store: &dyn BlobStore) {
    testsuite::put_get_roundtrip(store).await;
    testsuite::ranges(store).await;
    testsuite::head_and_delete(store).await;
    testsuite::too_large_stores_nothing(store).await;
    testsuite::failed_body_stores_nothing(store).await;
    testsuite::invalid_keys_refused(store).await;
    testsuite::large_streamed_blob(store).await;
    testsuite::replace_keeps_last(store).await;
}

#[tokio::test]
async fn s3_path_style_keeps_the_contract() {
    let moto = Moto::start().await;
    contract(&bucket(&moto, "apogee-path", true).await).await;
}
