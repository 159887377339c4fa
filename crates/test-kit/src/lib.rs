//! Simulators for thinger-patch's tests, for what cannot run here (never published).

pub mod thinger_cloud;
