//! SMS codes that prove a mobile number: sending them (`sender`).

pub mod sender;
