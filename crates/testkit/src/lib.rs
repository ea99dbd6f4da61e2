pub mod images;
pub mod postgres;
pub mod proxy;
pub mod receiver;
pub mod registry;
pub mod registry_layout;
pub mod server;
pub mod skopeo;
