//! AnnData `.h5ad` input and output against the fixtures that anndata/h5py wrote
//! (`tests/data/make_h5ad_fixtures.py`): the same scores as the same arrays in `.npy`,
//! every kind of label column, scanpy's neighbour graph, the copy with a new obsm entry,
//! and a one-line error for each file refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use diffbio_cli::h5ad::{write_with_obsm, AnnData, Labels};
use diffbio_cli::{read_embedding, read_labels, score, Report, ScoreRequest, Source};
use diffbio_metrics::{knn, BenchmarkConfig, Silent, SkipReason};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/h5ad")
        .join(name)
}

fn h5ad_source(file: &str, obsm: &[&str], knn_obsp: Option<&str>) -> Source {
    Source::H5ad {
        file: fixture(file),
        obsm: obsm.iter().map(|k| k.to_string()).collect(),
        batch_key: "batch".into(),
        label_key: Some("cell_type".into()),
        pre_obsm: Some("X_pca".into()),
        knn_obsp: knn_obsp.map(String::from),
        graph_obsp: None,
    }
}

fn run(source: Source) -> diffbio_cli::Result<Report> {
    let request = ScoreRequest {
        source,
        config: BenchmarkConfig::default(),
    };
    score(&request, &Silent)
}

#[test]
fn scores_from_h5ad_equal_the_scores_of_the_same_arrays_as_npy() {
    let from_npy: Vec<_> = ["X_pca", "X_scvi"]
        .iter()
        .map(|key| {
            let source = Source::Arrays {
                embedding: fixture(&format!("{key}.npy")),
                batch: fixture("batch.npy"),
                labels: Some(fixture("cell_type.npy")),
                pre: Some(fixture("X_pca.npy")),
            };
            run(source).unwrap().rows.remove(0).scores
        })
        .collect();
    assert!(from_npy[1].total.is_some(), "every metric computed");
    for file in ["cells.h5ad", "cells_gzip.h5ad", "cells_lzf.h5ad"] {
        let report = run(h5ad_source(file, &["X_pca", "X_scvi"], None)).unwrap();
        let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["X_pca", "X_scvi"], "{file}");
        for (row, npy) in report.rows.iter().zip(&from_npy) {
            assert_eq!(&row.scores, npy, "{file} {}", row.name);
        }
    }
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
    // Per-label results name the cell types.
    let report = run(h5ad_source("cells_gzip.h5ad", &["X_scvi"], None)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&diffbio_cli::to_json(&report)).unwrap();
    let per_label = json["X_scvi"]["kbet_per_label"].as_object().unwrap();
    let named: Vec<&str> = per_label.keys().map(String::as_str).collect();
    assert_eq!(named, types.names);
    for (label, name) in report.rows[0]
        .scores
        .kbet_per_label
        .iter()
        .zip(&types.names)
    {
        assert_eq!(per_label[name]["acceptance"].as_f64(), label.acceptance);
    }
    assert_eq!(
        types.codes,
        read_labels(&fixture("cell_type.npy"), 150, "types").unwrap()
    );
}

/// The error message of a refused input, which must be one line naming the file.
fn refusal(result: diffbio_cli::Result<impl std::fmt::Debug>, file: &str) -> String {
    let message = result.unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(file), "{message}");
    message
}

#[test]
fn refused_files_are_one_line_errors() {
    for (file, obsm, says) in [
        (
            "missing_category.h5ad",
            "X_pca",
            "obs['cell_type'] has no value for 3 cells",
        ),
        ("blosc.h5ad", "X_pca", "HDF5 filter 32001 (blosc)"),
        (
            "sparse_obsm.h5ad",
            "X_pca",
            "is a sparse matrix (csr_matrix)",
        ),
        ("old_layout.h5ad", "X_pca", "pre-0.8 AnnData layout"),
        (
            "cells.h5ad",
            "X_umap",
            r#"obsm has no `X_umap` (it holds ["X_pca", "X_scvi"])"#,
        ),
        ("X_pca.npy", "X_pca", "not an HDF5 file"),
    ] {
        let mut source = h5ad_source(file, &[obsm], None);
        if let Source::H5ad { pre_obsm, .. } = &mut source {
            *pre_obsm = None;
        }
        let message = refusal(run(source), file);
        assert!(message.contains(says), "{file}: {message}");
    }
}

#[test]
fn a_directory_is_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("scored.h5ad");
    std::fs::create_dir(&folder).unwrap();
    let message = refusal(
        run(h5ad_source("", &["X_pca"], None).with_file(&folder)),
        "scored.h5ad",
    );
    assert!(message.ends_with("is a directory, not a file"), "{message}");
    let message = refusal(read_embedding(&folder), "scored.h5ad");
    assert!(message.ends_with("is a directory, not a file"), "{message}");
    let absent = dir.path().join("absent.h5ad");
    let message = refusal(AnnData::open(&absent), "absent.h5ad");
    assert!(message.ends_with("no such file"), "{message}");
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
fn truncated_and_corrupted_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("cells_gzip.h5ad")).unwrap();
    let path = dir.path().join("broken.h5ad");
    for cut in [100, 2_000, 20_000, bytes.len() / 2] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let message = refusal(
            run(h5ad_source("", &["X_pca"], None).with_file(&path)),
            "broken.h5ad",
        );
        // a damaged file is not taken for an old one
        assert!(!message.contains("pre-0.8"), "cut at {cut}: {message}");
    }
    // Bytes overwritten at random places (a fixed generator): an error or a score, never a
    // panic.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..40 {
        let mut damaged = bytes.clone();
        for _ in 0..20 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % damaged.len() as u64) as usize;
            damaged[at] = (state >> 32) as u8;
        }
        std::fs::write(&path, &damaged).unwrap();
        let _ = run(h5ad_source("", &["X_pca", "X_scvi"], Some("distances")).with_file(&path));
    }
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
        if let Err(e) = run(h5ad_source("", &["X_pca"], None).with_file(&path)) {
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

trait WithFile {
    fn with_file(self, path: &Path) -> Self;
}

impl WithFile for Source {
    fn with_file(mut self, path: &Path) -> Self {
        if let Source::H5ad { file, .. } = &mut self {
            *file = path.to_path_buf();
        }
        self
    }
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
fn knn_obsp_serves_its_own_embedding_and_skips_what_it_cannot() {
    let exact = run(h5ad_source("cells.h5ad", &["X_pca", "X_scvi"], None)).unwrap();
    let given = run(h5ad_source(
        "cells.h5ad",
        &["X_pca", "X_scvi"],
        Some("distances"),
    ))
    .unwrap();
    // X_pca is not what the graph is of: it keeps the exact graph, all its scores.
    assert_eq!(given.rows[0].scores, exact.rows[0].scores);
    assert!(given.rows[0].scores.skipped.is_empty());
    assert!(given.rows[0].neighbours.contains("is of X_scvi"));
    // X_scvi: graph connectivity (14 neighbours) from the graph, which is the exact one;
    // everything needing more neighbours is skipped, nothing is computed on fewer.
    let (row, all) = (&given.rows[1], &exact.rows[1].scores);
    assert!(
        row.neighbours.contains("obsp['distances']"),
        "{}",
        row.neighbours
    );
    assert_eq!(row.scores.graph_connectivity, all.graph_connectivity);
    assert_eq!(row.scores.silhouette_label, all.silhouette_label);
    assert_eq!(row.scores.nmi_kmeans, all.nmi_kmeans);
    let skipped: Vec<(&str, SkipReason)> = (row.scores.skipped.iter())
        .map(|s| (s.metric, s.reason.clone()))
        .collect();
    let fewer = |needs| SkipReason::TooFewNeighbours { needs, has: 14 };
    assert_eq!(
        skipped,
        [
            ("batch_entropy", fewer(30)),
            ("ilisi", fewer(89)),
            ("clisi", fewer(89)),
            ("knn_accuracy", fewer(15)),
            ("kbet", fewer(49))
        ]
    );
    for (metric, _) in skipped {
        assert_eq!(row.scores.get(metric), None, "{metric}");
    }
    assert_eq!(row.scores.total, None, "no aggregate without all its parts");
}

/// A graph scored alone (an integration that outputs no embedding): its graph metrics are
/// those of the embedding it is the graph of, scored through that graph; every metric
/// that needs an embedding is skipped as such, so no aggregate is given.
#[test]
fn a_graph_scored_alone_has_the_graph_metrics_and_lists_the_rest() {
    let mut source = h5ad_source("cells.h5ad", &[], None);
    if let Source::H5ad { graph_obsp, .. } = &mut source {
        *graph_obsp = Some(diffbio_cli::GraphRow {
            key: "distances".into(),
            name: "BBKNN".into(),
        });
    }
    let alone = run(source).unwrap();
    let through = run(h5ad_source("cells.h5ad", &["X_scvi"], Some("distances"))).unwrap();
    let (row, of) = (&alone.rows[0], &through.rows[0].scores);
    assert_eq!((alone.rows.len(), row.name.as_str()), (1, "BBKNN"));
    assert!(
        row.neighbours.contains("scored alone"),
        "{}",
        row.neighbours
    );
    assert_eq!(row.scores.graph_connectivity, of.graph_connectivity);
    assert!(row.scores.graph_connectivity.is_some());
    let needs: Vec<&str> = (row.scores.skipped.iter())
        .filter(|s| s.reason == SkipReason::NeedsEmbedding)
        .map(|s| s.metric)
        .collect();
    assert_eq!(
        needs,
        [
            "pcr_comparison",
            "silhouette_label",
            "isolated_labels",
            "silhouette_batch",
            "bras",
            "nmi_kmeans",
            "ari_kmeans"
        ]
    );
    for metric in needs {
        assert_eq!(row.scores.get(metric), None, "{metric}");
    }
    let fewer: Vec<&str> = (row.scores.skipped.iter())
        .filter(|s| matches!(s.reason, SkipReason::TooFewNeighbours { .. }))
        .map(|s| s.metric)
        .collect();
    let through_fewer: Vec<&str> = of.skipped.iter().map(|s| s.metric).collect();
    assert_eq!(fewer, through_fewer);
    assert_eq!(row.scores.total, None);
}

/// Each row's stage times: the first row's begin with reading the inputs (shared); every row
/// has the same computing stages, in order, each timed.
#[test]
fn rows_carry_their_stage_times() {
    let report = run(h5ad_source("cells.h5ad", &["X_pca", "X_scvi"], None)).unwrap();
    let stages =
        |row: &diffbio_cli::Row| -> Vec<&str> { row.timings.iter().map(|t| t.0).collect() };
    let (first, second) = (stages(&report.rows[0]), stages(&report.rows[1]));
    assert_eq!(first[0], "reading the inputs");
    assert_eq!(first[1..], second[..], "the same stages for each embedding");
    assert!(
        second.contains(&"kBET") && second.contains(&"k-means NMI/ARI"),
        "{second:?}"
    );
    let times = report.rows.iter().flat_map(|r| &r.timings);
    assert!(times.clone().all(|&(_, t)| t >= 0.0) && times.map(|t| t.1).sum::<f64>() > 0.0);
}

#[test]
fn knn_obsp_of_another_embedding_is_refused() {
    let message = refusal(
        run(h5ad_source("cells.h5ad", &["X_pca"], Some("distances"))),
        "cells.h5ad",
    );
    assert!(message.contains("graph of obsm['X_scvi']"), "{message}");
    let message = refusal(
        run(h5ad_source(
            "cells.h5ad",
            &["X_scvi"],
            Some("connectivities"),
        )),
        "cells.h5ad",
    );
    assert!(
        message.contains("obsp has no `connectivities`"),
        "{message}"
    );
}

#[test]
fn the_copy_gets_the_new_obsm_and_the_input_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.h5ad");
    std::fs::copy(fixture("cells_gzip.h5ad"), &input).unwrap();
    let before = std::fs::read(&input).unwrap();
    let output = dir.path().join("out.h5ad");
    let corrected = diffbio_cli::Embedding {
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
    let twice = diffbio_cli::Embedding {
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
    let short = diffbio_cli::Embedding {
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

fn diffbio(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_diffbio"))
        .args(args)
        .output()
        .expect("runs")
}

fn h5ad_args<'a>(file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "score",
        "--h5ad",
        file,
        "--obsm",
        "X_pca,X_scvi",
        "--batch-key",
        "batch",
        "--label-key",
        "cell_type",
        "--pre-obsm",
        "X_pca",
        "-q",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn command_line_formats_carry_the_same_numbers() {
    let file = fixture("cells_lzf.h5ad");
    let file = file.to_str().unwrap();
    let report = run(h5ad_source("cells_lzf.h5ad", &["X_pca", "X_scvi"], None)).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&diffbio(&h5ad_args(file, &["--format", "json"])).stdout).unwrap();
    let csv = String::from_utf8(diffbio(&h5ad_args(file, &["--format", "csv"])).stdout).unwrap();
    let tsv = String::from_utf8(diffbio(&h5ad_args(file, &["--format", "tsv"])).stdout).unwrap();
    let csv: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let tsv: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(csv, tsv);
    assert_eq!(csv.len(), 3, "a header and a row per embedding");
    assert_eq!(
        &csv[0][..14],
        [
            "Embedding",
            "Isolated labels",
            "KMeans NMI",
            "KMeans ARI",
            "Silhouette label",
            "cLISI",
            "BRAS",
            "iLISI",
            "KBET",
            "Graph connectivity",
            "PCR comparison",
            "Batch correction",
            "Bio conservation",
            "Total"
        ]
    );
    for (row, line) in report.rows.iter().zip(&csv[1..]) {
        assert_eq!(line[0], row.name);
        assert_eq!(json[&row.name]["neighbours"], "exact kNN graph (all pairs)");
        for (title, field) in csv[0].iter().zip(line).skip(1) {
            let metric = diffbio_metrics::METRICS
                .iter()
                .find(|m| m.title == *title)
                .unwrap();
            let value = row.scores.get(metric.name).unwrap();
            assert_eq!(field.parse::<f64>().unwrap(), value, "{title}");
            assert_eq!(json[&row.name][metric.name].as_f64().unwrap(), value);
        }
    }
}

#[test]
fn min_max_scale_rescales_each_metric_across_the_embeddings() {
    let file = fixture("cells.h5ad");
    let out = diffbio(&h5ad_args(
        file.to_str().unwrap(),
        &["--json", "--min-max-scale"],
    ));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let raw = run(h5ad_source("cells.h5ad", &["X_pca", "X_scvi"], None)).unwrap();
    let (a, b) = (&raw.rows[0].scores, &raw.rows[1].scores);
    for metric in ["ilisi", "bras", "kbet", "isolated_labels", "pcr_comparison"] {
        let (x, y) = (a.get(metric).unwrap(), b.get(metric).unwrap());
        let (sx, sy) = (
            json["X_pca"][metric].as_f64().unwrap(),
            json["X_scvi"][metric].as_f64().unwrap(),
        );
        let want = match x.partial_cmp(&y).unwrap() {
            std::cmp::Ordering::Less => (0.0, 1.0),
            std::cmp::Ordering::Greater => (1.0, 0.0),
            std::cmp::Ordering::Equal => (0.0, 0.0),
        };
        assert_eq!((sx, sy), want, "{metric}");
    }
    for name in ["X_pca", "X_scvi"] {
        let row = &json[name];
        let parts = [
            "bras",
            "ilisi",
            "kbet",
            "graph_connectivity",
            "pcr_comparison",
        ];
        let mean = parts.iter().map(|p| row[p].as_f64().unwrap()).sum::<f64>() / 5.0;
        assert!((row["batch_correction"].as_f64().unwrap() - mean).abs() < 1e-15);
        assert_eq!(row["min_max_scaled"], true);
    }
}

#[test]
fn plot_draws_the_table_best_total_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("cells_gzip.h5ad");
    let svg = dir.path().join("scib.svg");
    let out = diffbio(&h5ad_args(
        file.to_str().unwrap(),
        &["--plot", svg.to_str().unwrap()],
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    for words in [
        "Bio conservation",
        "Batch correction",
        "Aggregate score",
        "KMeans",
    ] {
        assert!(text.contains(words), "{words}");
    }
    // X_scvi has the higher total (0.89 against 0.67): its row comes first.
    let (scvi, pca) = (text.find("X_scvi").unwrap(), text.find("X_pca").unwrap());
    assert!(scvi < pca);
    let circles = text.matches("<circle").count();
    assert_eq!(circles, 2 * 10, "a circle per metric and embedding");
    let bad = dir.path().join("scib.pdf");
    let out = diffbio(&h5ad_args(
        file.to_str().unwrap(),
        &["--plot", bad.to_str().unwrap()],
    ));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be .svg or .png"));
    if diffbio_cli::plot::register_font() {
        let png = dir.path().join("scib.png");
        let out = diffbio(&h5ad_args(
            file.to_str().unwrap(),
            &["--plot", png.to_str().unwrap()],
        ));
        assert!(out.status.success());
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
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
    let mut source = h5ad_source(file, &["X_pca"], None);
    let from_npy = run(Source::Arrays {
        embedding: fixture("X_pca.npy"),
        batch: fixture("batch.npy"),
        labels: Some(fixture("cell_type.npy")),
        pre: Some(fixture("X_pca.npy")),
    })
    .unwrap();
    assert_eq!(
        run(source.clone()).unwrap().rows[0].scores,
        from_npy.rows[0].scores
    );
    if let Source::H5ad { batch_key, .. } = &mut source {
        *batch_key = "donor".into();
    }
    refusal(run(source), file);
}
