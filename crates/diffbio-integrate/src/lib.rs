//! The pieces of `examples/integrate` (batch integration in a Candle training loop), as a
//! library so that the example and its tests share them: the input data ([`data`]), the
//! model and its training step ([`model`]), and the plots ([`plot`]).
#![warn(missing_docs)]

pub mod data;
pub mod model;
pub mod plot;
