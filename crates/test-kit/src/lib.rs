pub mod thinger_cloud;
