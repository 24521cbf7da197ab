//! AnnData `.h5ad` reading and writing against the fixtures that anndata/h5py wrote
//! (`tests/data/make_h5ad_fixtures.py`): the same arrays as their `.npy` twins, every kind
//! of label column, scanpy's neighbour graph, the copy with a new obsm entry, and a
//! one-line error for each file refused. (`diffbio-cli`'s tests score the same files.)

use std::path::{Path, PathBuf};

use diffbio_io::h5ad::{write_with_obsm, AnnData, Labels};
use diffbio_io::{read_embedding, read_labels, Embedding};
use diffbio_metrics::knn;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/h5ad")
        .join(name)
}

/// The error message of a refused input, which must be one line naming the file.
fn refusal(result: diffbio_io::Result<impl std::fmt::Debug>, file: &str) -> String {
    let message = result.unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(file), "{message}");
    message
}

/// Everything `diffbio score` reads from a fixture-like file: both embeddings, both label
/// columns and the obsp graph.
fn read_all(path: &Path) -> diffbio_io::Result<()> {
    let anndata = AnnData::open(path)?;
    for key in ["X_pca", "X_scvi"] {
        anndata.obsm(key)?;
    }
    for column in ["batch", "cell_type"] {
        anndata.obs(column)?;
    }
    anndata.obsp("distances")?;
    Ok(())
}

#[test]
fn every_kind_of_label_column_gives_the_same_codes() {
    let codes = read_labels(&fixture("batch.npy"), 150, "batches").unwrap();
    let anndata = AnnData::open(&fixture("cells_gzip.h5ad")).unwrap();
    let lanes = ["lane-A", "lane-B", "lane-C"].map(String::from).to_vec();
    let numbers = ["0", "1", "2"].map(String::from).to_vec();
    let donors = ["d1", "d2", "d3"].map(String::from).to_vec();
    for (column, names) in [
        ("batch", &lanes),        // categorical
        ("batch_name", &lanes),   // string-array
        ("donor", &donors),       // nullable-string-array
        ("batch_code", &numbers), // int64 array
        ("batch_int", &numbers),  // nullable-integer
    ] {
        let labels = anndata.obs(column).unwrap();
        let want = Labels {
            codes: codes.clone(),
            names: names.clone(),
        };
        assert_eq!(labels, want, "{column}");
    }
    let types = anndata.obs("cell_type").unwrap();
    assert_eq!(types.names, ["B cell", "NK cell", "T cell", "monocyte"]);
    assert_eq!(
        types.codes,
        read_labels(&fixture("cell_type.npy"), 150, "types").unwrap()
    );
}

#[test]
fn a_directory_is_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("scored.h5ad");
    std::fs::create_dir(&folder).unwrap();
    let message = refusal(read_embedding(&folder), "scored.h5ad");
    assert!(message.ends_with("is a directory, not a file"), "{message}");
    let message = refusal(AnnData::open(&folder), "scored.h5ad");
    assert!(message.ends_with("is a directory, not a file"), "{message}");
    let absent = dir.path().join("absent.h5ad");
    let message = refusal(AnnData::open(&absent), "absent.h5ad");
    assert!(message.ends_with("no such file"), "{message}");
}

#[test]
fn truncated_files_are_errors_not_taken_for_old_ones() {
    let bytes = std::fs::read(fixture("cells_gzip.h5ad")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [100, 2_000, 20_000, bytes.len() / 2] {
        let path = dir.path().join(format!("cut-{cut}.h5ad"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let message = refusal(read_all(&path), &format!("cut-{cut}.h5ad"));
        assert!(!message.contains("pre-0.8"), "cut at {cut}: {message}");
    }
}

#[test]
fn pandas_3_strings_index_included_read_as_the_categoricals() {
    let file = "pandas3_strings.h5ad";
    let anndata = AnnData::open(&fixture(file)).unwrap();
    assert_eq!(anndata.n_obs(), 150, "the index is a nullable-string-array");
    let categorical = AnnData::open(&fixture("cells.h5ad")).unwrap();
    for column in ["batch", "cell_type"] {
        assert_eq!(
            anndata.obs(column).unwrap(),
            categorical.obs(column).unwrap()
        );
    }
    let message = refusal(anndata.obs("donor"), file);
    assert!(
        message.contains("obs['donor'] has no value for 2 cells"),
        "{message}"
    );
}

#[test]
fn obsm_reads_f32_and_f64_as_the_npy_twins_do() {
    for file in ["cells.h5ad", "cells_gzip.h5ad", "cells_lzf.h5ad"] {
        let anndata = AnnData::open(&fixture(file)).unwrap();
        assert_eq!(anndata.n_obs(), 150);
        assert_eq!(anndata.obsm_keys(), ["X_pca", "X_scvi"]);
        for key in ["X_pca", "X_scvi"] {
            let twin = read_embedding(&fixture(&format!("{key}.npy"))).unwrap();
            assert_eq!(anndata.obsm(key).unwrap(), twin, "{file} {key}");
        }
    }
}

#[test]
fn label_columns_that_cannot_be_labels_are_refused() {
    let anndata = AnnData::open(&fixture("cells.h5ad")).unwrap();
    let message = refusal(anndata.obs("n_counts"), "cells.h5ad");
    assert!(message.contains("holds f64 values"), "{message}");
    let message = refusal(anndata.obs("sample"), "cells.h5ad");
    assert!(message.contains("obs has no `sample`"), "{message}");
    assert!(
        message.contains("\"batch_name\""),
        "names the columns: {message}"
    );
}

#[test]
fn scanpy_graph_is_the_exact_graph_it_was_made_as() {
    let anndata = AnnData::open(&fixture("cells_lzf.h5ad")).unwrap();
    let given = anndata.obsp("distances").unwrap();
    assert_eq!(given.use_rep.as_deref(), Some("X_scvi"));
    assert_eq!(given.graph.k(), 14);
    let x = anndata.obsm("X_scvi").unwrap();
    let exact = knn(&x.values, x.dims, 14).unwrap();
    for i in 0..150 {
        assert_eq!(given.graph.neighbors(i), exact.neighbors(i), "cell {i}");
        for (a, b) in given.graph.distances(i).iter().zip(exact.distances(i)) {
            assert!((a - b).abs() < 1e-5 * b.max(1.0), "cell {i}: {a} vs {b}");
        }
    }
}

#[test]
fn the_copy_gets_the_new_obsm_and_the_input_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h5ad");
    std::fs::copy(fixture("cells_gzip.h5ad"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let output = dir.path().join("out.h5ad");
    let corrected = Embedding {
        values: (0..150 * 4).map(|i| (i as f32 * 0.37).sin()).collect(),
        dims: 4,
    };
    write_with_obsm(&input, &output, "X_diffbio", &corrected).unwrap();
    assert_eq!(std::fs::read(&input).unwrap(), before, "input unchanged");
    let copy = AnnData::open(&output).unwrap();
    assert_eq!(copy.obsm_keys(), ["X_diffbio", "X_pca", "X_scvi"]);
    assert_eq!(copy.obsm("X_diffbio").unwrap(), corrected);
    let original = AnnData::open(&input).unwrap();
    assert_eq!(copy.obsm("X_pca").unwrap(), original.obsm("X_pca").unwrap());
    assert_eq!(
        copy.obs("cell_type").unwrap(),
        original.obs("cell_type").unwrap()
    );
    // Writing again replaces the entry.
    let twice = Embedding {
        values: corrected.values.iter().map(|v| v * 2.0).collect(),
        dims: 4,
    };
    write_with_obsm(
        &output.clone(),
        &dir.path().join("again.h5ad"),
        "X_diffbio",
        &twice,
    )
    .unwrap();
    let again = AnnData::open(&dir.path().join("again.h5ad")).unwrap();
    assert_eq!(again.obsm("X_diffbio").unwrap(), twice);
    // Refused: the input as the output, an embedding of other cells.
    let message = refusal(
        write_with_obsm(&input, &input, "X_diffbio", &corrected),
        "in.h5ad",
    );
    assert!(message.contains("is the input file"), "{message}");
    let short = Embedding {
        values: vec![0.5; 8],
        dims: 4,
    };
    let message = refusal(
        write_with_obsm(&input, &output, "X_diffbio", &short),
        "in.h5ad",
    );
    assert!(message.contains("2 rows"), "{message}");
    assert!(!dir.path().join("out.h5ad.partial").exists());
}

/// An encoding attribute damaged in place is reported as damage: never as the pre-0.8
/// layout, never as a missing column that the message then lists.
#[test]
fn damaged_encoding_attributes_are_named_as_damage() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("cells_gzip.h5ad")).unwrap();
    let path = dir.path().join("damaged.h5ad");
    let name = b"encoding-type";
    let mut said = Vec::new();
    for at in (0..bytes.len() - name.len()).filter(|&i| bytes[i..].starts_with(name)) {
        let mut damaged = bytes.clone();
        damaged[at + name.len() - 1] = b'X';
        std::fs::write(&path, &damaged).unwrap();
        if let Err(e) = read_all(&path) {
            let message = e.to_string();
            assert!(!message.contains("pre-0.8"), "{message}");
            assert!(!message.contains("obs has no"), "{message}");
            said.push(message);
        }
    }
    let says = |what: &str| said.iter().any(|m| m.contains(what));
    assert!(
        says("its root group has no `encoding-type` attribute"),
        "{said:?}"
    );
    assert!(
        says("obs/batch has no readable `encoding-type` attribute"),
        "{said:?}"
    );
    assert!(
        says("obs/cell_type has no readable `encoding-type` attribute"),
        "{said:?}"
    );
}
