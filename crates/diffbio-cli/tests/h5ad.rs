//! `diffbio score` on AnnData `.h5ad` files, the fixtures of diffbio-io (which anndata/h5py
//! wrote): the same scores as the same arrays in `.npy`, scanpy's neighbour graph used or
//! refused, the command line's formats and figure, and a one-line error for each file
//! refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use diffbio_cli::{score, Report, ScoreRequest, Source};
use diffbio_io::h5ad::AnnData;
use diffbio_metrics::{BenchmarkConfig, Silent, SkipReason};

/// diffbio-io's fixtures (`make_h5ad_fixtures.py` there wrote them).
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../diffbio-io/tests/data/h5ad")
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
fn per_label_results_name_the_cell_types() {
    let anndata = AnnData::open(&fixture("cells_gzip.h5ad")).unwrap();
    let types = anndata.obs("cell_type").unwrap();
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
fn a_directory_given_as_the_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("scored.h5ad");
    std::fs::create_dir(&folder).unwrap();
    let message = refusal(
        run(h5ad_source("", &["X_pca"], None).with_file(&folder)),
        "scored.h5ad",
    );
    assert!(message.ends_with("is a directory, not a file"), "{message}");
}

#[test]
fn damaged_files_are_errors_or_scores_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("cells_gzip.h5ad")).unwrap();
    let path = dir.path().join("broken.h5ad");
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
    assert_eq!(needs, diffbio_metrics::EMBEDDING_METRICS);
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
fn pandas_3_strings_score_as_the_categoricals() {
    let file = "pandas3_strings.h5ad";
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
