//! The endpoint over a real socket.

mod endpoint;
