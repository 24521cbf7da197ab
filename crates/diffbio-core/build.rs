//! With the `cuda` feature, compiles `kernels/*.cu` to PTX (bindgen_cuda, nvcc from PATH,
//! `CUDA_COMPUTE_CAP`, default 90) and writes `OUT_DIR/ptx.rs`. Without it, does nothing,
//! so the default build needs no CUDA toolkit.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "cuda")]
    {
        println!("cargo::rerun-if-changed=kernels");
        let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
        let bindings = bindgen_cuda::Builder::default()
            .kernel_paths_glob("kernels/*.cu")
            .arg("-O3")
            .arg("-std=c++17")
            .arg("-lineinfo")
            .build_ptx()
            .expect("nvcc compiles the kernels (see scripts/cuda-toolchain.sh)");
        bindings
            .write(format!("{out_dir}/ptx.rs"))
            .expect("write ptx.rs");
    }
}
