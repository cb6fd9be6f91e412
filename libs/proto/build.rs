//! Compiles `proto/` with protox (a protoc in Rust), so neither CI nor laptops need a system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../../proto");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        [
            "apogee/common/v1/common.proto",
            "apogee/auth/v1/auth.proto",
            "apogee/messaging/v1/messaging.proto",
            "apogee/files/v1/files.proto",
            "apogee/events/v1/events.proto",
        ],
        ["../../proto"],
    )?;
    // For tonic-reflection and grpcurl: compile_fds never writes one itself.
    std::fs::write(out_dir.join("apogee_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        // File bodies: `Bytes` frames are slices of the buffers they came in, never copied.
        .bytes(".apogee.files.v1")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
