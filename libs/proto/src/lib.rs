//! The gRPC surface of Apogee's services and the bus events' encoding, generated from `proto/` at
//! build time. Used by the client and server adapters and the event conversions in `apogee-api`;
//! nothing else belongs here.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod common {
    pub mod v1 {
        tonic::include_proto!("apogee.common.v1");
    }
}

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("apogee.auth.v1");
    }
}

pub mod messaging {
    pub mod v1 {
        tonic::include_proto!("apogee.messaging.v1");
    }
}

pub mod files {
    pub mod v1 {
        tonic::include_proto!("apogee.files.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("apogee.events.v1");
    }
}

/// The encoded `FileDescriptorSet` of every proto file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("apogee_descriptor");
