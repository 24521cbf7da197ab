//! With the `cuda` feature, compiles `kernels/*.cu` to PTX (bindgen_cuda, nvcc from PATH,
//! `CUDA_COMPUTE_CAP`, default 90) and writes `OUT_DIR/ptx.rs`. With `cuda-emu`, compiles
//! the same kernels as host C++ against the emulator (`kernels/emu`, g++ >= 12), under
//! AddressSanitizer + UBSan when `DIFFBIO_EMU_SANITIZE=address` (the test binaries are then
//! linked with their runtimes). ThreadSanitizer is not offered here: the Rust test harness,
//! built without it, trips it on its own channels; `scripts/emulate-kernels.sh thread` runs
//! the kernels under it through the C++ self-test instead. Without either feature, does
//! nothing, so the default build needs no CUDA toolkit and no C++ compiler.

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
    #[cfg(feature = "cuda-emu")]
    emulated_kernels();
}

#[cfg(feature = "cuda-emu")]
fn emulated_kernels() {
    println!("cargo::rerun-if-changed=kernels");
    println!("cargo::rerun-if-env-changed=DIFFBIO_EMU_SANITIZE");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++20")
        .opt_level(1)
        .debug(true)
        .flag("-pthread")
        // CUDA's threadIdx and blockDim are unsigned; the kernels compare them with ints.
        .flag("-Wno-sign-compare")
        .flag("-include")
        .flag(format!("{dir}/kernels/emu/cuda_emu.h"))
        .file(format!("{dir}/kernels/emu/launch.cpp"));
    // Rust links with `-nodefaultlibs`, so the sanitizer runtimes are named explicitly.
    let (flags, runtimes): (&[&str], &[&str]) =
        match std::env::var("DIFFBIO_EMU_SANITIZE").as_deref() {
            Ok("address") => (
                &[
                    "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all",
                    "-fno-omit-frame-pointer",
                ],
                &["asan", "ubsan"],
            ),
            Ok("") | Err(_) => (&[], &[]),
            Ok(other) => panic!("DIFFBIO_EMU_SANITIZE={other}: expected address"),
        };
    for flag in flags {
        build.flag(flag);
    }
    for runtime in runtimes {
        println!("cargo::rustc-link-lib=dylib={runtime}");
    }
    build.compile("diffbio_cuda_emu");
}
