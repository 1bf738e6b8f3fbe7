//! Renderings: one finding, many documents. Each module is a pure function from findings to
//! one target format, tested against that format's schema and limits; sinks only send.

pub mod asff;
pub mod chat;
pub mod email;
pub mod html;
pub mod ocsf;
pub mod text;
