//! The `diffbio` binary on small files: output, JSON keys, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};
use diffbio_metrics::{batch_entropy, knn, knn_accuracy};

const N: usize = 60;
const DIMS: usize = 4;

/// Three cell types as separated clusters, two batches shifted apart inside each type.
fn embedding() -> Vec<f32> {
    (0..N * DIMS)
        .map(|i| {
            let (cell, dim) = (i / DIMS, i % DIMS);
            let celltype = (cell % 3) as f32;
            let batch = (cell % 2) as f32;
            10.0 * celltype * (dim == 0) as u8 as f32
                + 0.8 * batch * (dim == 1) as u8 as f32
                + ((i * 7919) % 13) as f32 / 13.0
        })
        .collect()
}

fn batches() -> Vec<u32> {
    (0..N as u32).map(|i| i % 2).collect()
}

fn celltypes() -> Vec<u32> {
    (0..N as u32).map(|i| i % 3).collect()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let files = Self {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        let dev = Device::Cpu;
        let x = Tensor::from_vec(embedding(), (N, DIMS), &dev).unwrap();
        x.write_npy(files.path("x.npy")).unwrap();
        let as_i32 = |v: Vec<u32>| v.into_iter().map(|l| l as i64).collect::<Vec<_>>();
        let b = Tensor::new(as_i32(batches()), &dev)
            .unwrap()
            .to_dtype(candle_core::DType::I32)
            .unwrap();
        b.write_npy(files.path("batch.npy")).unwrap();
        let c = Tensor::new(as_i32(celltypes()), &dev).unwrap();
        c.write_npy(files.path("celltype.npy")).unwrap();
        let shifted: Vec<f32> = embedding()
            .iter()
            .zip(batches().iter().flat_map(|&b| [b; DIMS]))
            .map(|(v, b)| v + 3.0 * b as f32)
            .collect();
        Tensor::from_vec(shifted, (N, DIMS), &dev)
            .unwrap()
            .write_npy(files.path("x_before.npy"))
            .unwrap();
        x.narrow(0, 0, N - 1)
            .unwrap()
            .write_npy(files.path("x_short.npy"))
            .unwrap();
        x.save_safetensors("x", files.path("x.safetensors"))
            .unwrap();
        candle_core::safetensors::save(
            &[("embedding", x.clone()), ("batch", b.clone())]
                .into_iter()
                .collect(),
            files.path("both.safetensors"),
        )
        .unwrap();
        x.to_dtype(candle_core::DType::U32)
            .unwrap()
            .write_npy(files.path("x_int.npy"))
            .unwrap();
        b.to_dtype(candle_core::DType::F32)
            .unwrap()
            .write_npy(files.path("batch_float.npy"))
            .unwrap();
        (b.to_dtype(candle_core::DType::I64).unwrap() - 1.0)
            .unwrap()
            .write_npy(files.path("batch_negative.npy"))
            .unwrap();
        b.narrow(0, 0, N - 1)
            .unwrap()
            .write_npy(files.path("batch_short.npy"))
            .unwrap();
        // Sample ids as codes: 4,000,000,000 beside small ones (order kept).
        let ids = [3i64, 4_000_000_000, 4_000_000_007];
        let sparse: Vec<i64> = batches().iter().map(|&b| ids[b as usize]).collect();
        Tensor::new(sparse, &dev)
            .unwrap()
            .write_npy(files.path("batch_ids.npy"))
            .unwrap();
        let types: Vec<i64> = celltypes().iter().map(|&t| ids[t as usize]).collect();
        Tensor::new(types, &dev)
            .unwrap()
            .write_npy(files.path("celltype_ids.npy"))
            .unwrap();
        // Every cell a batch of its own: no cell type can score its batch silhouettes.
        Tensor::new((0..N as i64).collect::<Vec<_>>(), &dev)
            .unwrap()
            .write_npy(files.path("batch_own.npy"))
            .unwrap();
        std::fs::write(files.path("x.csv"), "1,2\n").unwrap();
        std::fs::write(files.path("broken.npy"), "not an npy file").unwrap();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn diffbio(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffbio"))
        .args(args)
        .output()
        .expect("runs")
}

fn score(files: &Files, embedding: &str, batch: &str, extra: &[&str]) -> Output {
    let embedding = files.path(embedding);
    let batch = files.path(batch);
    let mut args = vec![
        "score",
        "--embedding",
        embedding.to_str().unwrap(),
        "--batch",
        batch.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    diffbio(&args)
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(!output.status.success(), "unexpectedly succeeded");
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The JSON output's embeddings by name.
fn json_rows(output: &Output) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::from_str(stdout(output).trim()).expect("one JSON object") {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// The metrics of the one embedding scored (the note of its neighbour graph left out).
fn json(output: &Output) -> serde_json::Map<String, serde_json::Value> {
    let rows = json_rows(output);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let Some((_, serde_json::Value::Object(mut row))) = rows.into_iter().next() else {
        panic!("an embedding's entry is not an object");
    };
    assert_eq!(
        row.remove("neighbours").unwrap(),
        "exact kNN graph (all pairs)"
    );
    row
}

fn expected_entropy(k: usize) -> f64 {
    batch_entropy(&knn(&embedding(), DIMS, k).unwrap(), &batches())
        .unwrap()
        .mean
}

#[test]
fn json_has_exactly_the_computed_metrics_with_the_library_values() {
    let files = Files::new();
    let labels = files.path("celltype.npy");
    let out = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels.to_str().unwrap(), "--k", "10", "--json"],
    ));
    let keys: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "ari_kmeans",
            "batch_entropy",
            "bio_conservation",
            "bras",
            "clisi",
            "graph_connectivity",
            "ilisi",
            "isolated_labels",
            "kbet",
            "kbet_per_label",
            "knn_accuracy",
            "nmi_kmeans",
            "silhouette_batch",
            "silhouette_label"
        ]
    );
    // Per cell type, named by its code here (by its category in an .h5ad).
    let kbet = diffbio_metrics::kbet(
        &knn(&embedding(), DIMS, 49).unwrap(),
        &batches(),
        &celltypes(),
    )
    .unwrap();
    let per_label = out["kbet_per_label"].as_object().unwrap();
    assert_eq!(per_label.len(), kbet.per_label.len());
    for label in &kbet.per_label {
        let entry = &per_label[&label.label.to_string()];
        assert_eq!(entry["cells"], label.cells);
        assert_eq!(entry["acceptance"].as_f64(), label.acceptance);
    }
    let silhouette = diffbio_metrics::silhouette_label(&embedding(), DIMS, &celltypes()).unwrap();
    assert_eq!(out["silhouette_label"].as_f64().unwrap(), silhouette);
    // 60 cells: LISI uses all 59 other cells
    let clisi =
        diffbio_metrics::clisi(&knn(&embedding(), DIMS, 59).unwrap(), &celltypes()).unwrap();
    assert_eq!(out["clisi"].as_f64().unwrap(), clisi);
    let entropy = out["batch_entropy"].as_f64().unwrap();
    assert!((entropy - expected_entropy(10)).abs() < 1e-12);
    assert!(entropy > 0.0 && entropy < 1.0, "{entropy}");
    let accuracy = knn_accuracy(&knn(&embedding(), DIMS, 15).unwrap(), &celltypes())
        .unwrap()
        .mean;
    assert_eq!(out["knn_accuracy"].as_f64().unwrap(), accuracy);
}

/// With the pre-integration embedding: PCR comparison and scib's aggregates.
#[test]
fn pre_integration_embedding_gives_pcr_comparison_and_the_aggregates() {
    let files = Files::new();
    let labels = files.path("celltype.npy");
    let before = files.path("x_before.npy");
    let out = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &[
            "--labels",
            labels.to_str().unwrap(),
            "--pre",
            before.to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(out.len(), 17, "16 metrics and kbet_per_label");
    let get = |key: &str| out[key].as_f64().unwrap();
    let pcr_before = diffbio_metrics::pcr(&read_back(&before), DIMS, &batches()).unwrap();
    let pcr_after = diffbio_metrics::pcr(&embedding(), DIMS, &batches()).unwrap();
    assert!(pcr_before > pcr_after);
    assert!((get("pcr_comparison") - (pcr_before - pcr_after) / pcr_before).abs() < 1e-12);
    let mean = |keys: [&str; 5]| keys.iter().map(|k| get(k)).sum::<f64>() / 5.0;
    let batch = mean([
        "bras",
        "ilisi",
        "kbet",
        "graph_connectivity",
        "pcr_comparison",
    ]);
    let bio = mean([
        "isolated_labels",
        "nmi_kmeans",
        "ari_kmeans",
        "silhouette_label",
        "clisi",
    ]);
    assert!((get("batch_correction") - batch).abs() < 1e-12);
    assert!((get("bio_conservation") - bio).abs() < 1e-12);
    assert!((get("total") - (0.4 * batch + 0.6 * bio)).abs() < 1e-12);
    // Without labels: PCR comparison, but no aggregate (they need the cell-type metrics).
    let out = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--pre", before.to_str().unwrap(), "--json"],
    ));
    let keys: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(keys, ["batch_entropy", "ilisi", "pcr_comparison"]);
    let short = files.path("x_short.npy");
    assert_fails_with(
        &files,
        "x.npy",
        "batch.npy",
        &["--pre", short.to_str().unwrap()],
        "the pre-integration embedding must have shape [60, dims] (one row per cell of the embedding), got [59, 4]",
    );
}

fn read_back(path: &std::path::Path) -> Vec<f32> {
    Tensor::read_npy(path)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn without_labels_only_batch_metrics_are_reported() {
    let files = Files::new();
    let out = json(&score(&files, "x.npy", "batch.npy", &["--json"]));
    let keys: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(keys, ["batch_entropy", "ilisi"]);
    assert!((out["batch_entropy"].as_f64().unwrap() - expected_entropy(30)).abs() < 1e-12);
}

#[test]
fn table_has_a_row_per_embedding_under_scib_titles() {
    let files = Files::new();
    let text = stdout(&score(&files, "x.npy", "batch.npy", &["--k", "10"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let titles: Vec<&str> = lines[0]
        .split("  ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    assert_eq!(titles, ["Embedding", "iLISI", "Batch entropy"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "x");
    let value: f64 = row[2].parse().unwrap();
    assert!((value - expected_entropy(10)).abs() < 1e-4);
    assert_eq!(lines[3], "neighbours: exact kNN graph (all pairs)");
}

#[test]
fn safetensors_inputs_single_and_named() {
    let files = Files::new();
    let from_npy = json(&score(&files, "x.npy", "batch.npy", &["--json"]));
    assert_eq!(
        json(&score(&files, "x.safetensors", "batch.npy", &["--json"])),
        from_npy
    );
    let named = json(&score(
        &files,
        "both.safetensors:embedding",
        "both.safetensors:batch",
        &["--json"],
    ));
    assert_eq!(named, from_npy);
    let err = stderr_of_failure(&score(&files, "both.safetensors", "batch.npy", &[]));
    assert!(
        err.contains("holds tensors [\"batch\", \"embedding\"]"),
        "{err}"
    );
    let err = stderr_of_failure(&score(&files, "both.safetensors:cells", "batch.npy", &[]));
    assert!(err.contains("no tensor named `cells`"), "{err}");
}

fn assert_fails_with(files: &Files, embedding: &str, batch: &str, extra: &[&str], message: &str) {
    let err = stderr_of_failure(&score(files, embedding, batch, extra));
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(message), "expected {message:?} in {err:?}");
}

/// A metric undefined on the data is skipped and listed with its reason, in the table's
/// notes and in JSON; the run succeeds with every other metric.
#[test]
fn a_metric_undefined_on_the_data_does_not_sink_the_table() {
    let files = Files::new();
    let labels = files.path("celltype.npy");
    let labels = labels.to_str().unwrap();
    let why = "undefined here: none of the 3 cell types has its cells in 2 or more batches \
               without each cell in a batch of its own (60 cells in 60 batches)";
    let table = score(&files, "x.npy", "batch_own.npy", &["--labels", labels]);
    let (out, err) = (stdout(&table), String::from_utf8_lossy(&table.stderr));
    assert!(out.contains("iLISI") && out.contains("KBET"), "{out}");
    let notes = format!("{out}{err}");
    assert!(
        notes.contains(&format!("x: skipped silhouette_batch ({why})")),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("x: skipped bras ({why})")),
        "{notes}"
    );
    let row = json(&score(
        &files,
        "x.npy",
        "batch_own.npy",
        &["--labels", labels, "--json"],
    ));
    assert!(
        row["ilisi"].is_f64() && row["silhouette_label"].is_f64(),
        "{row:?}"
    );
    assert!(
        !row.contains_key("bras") && !row.contains_key("total"),
        "{row:?}"
    );
    let skipped = row["skipped"]
        .as_array()
        .expect("a list of skipped metrics");
    let names: Vec<&str> = skipped
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["silhouette_batch", "bras"]);
    assert_eq!(skipped[0]["reason"], why);
}

/// `--per-cell` writes every cell's LISI of the batches and of the cell types: the library's
/// per-cell LISI on the same exact graph (59 neighbours: every other cell of the 60).
#[test]
fn per_cell_lisi_is_written_for_every_cell() {
    let files = Files::new();
    let (labels, out) = (files.path("celltype.npy"), files.path("lisi.tsv"));
    let args = [
        "--labels",
        labels.to_str().unwrap(),
        "--per-cell",
        out.to_str().unwrap(),
    ];
    stdout(&score(&files, "x.npy", "batch.npy", &args));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("cell\tx:batch_lisi\tx:label_lisi"));
    let graph = knn(&embedding(), DIMS, N - 1).unwrap();
    let want_batch = diffbio_metrics::lisi(&graph, &batches()).unwrap().per_cell;
    let want_label = diffbio_metrics::lisi(&graph, &celltypes())
        .unwrap()
        .per_cell;
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split('\t').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), N);
    for (cell, row) in rows.iter().enumerate() {
        assert_eq!(row[0], cell as f64);
        assert_eq!(
            (row[1], row[2]),
            (want_batch[cell], want_label[cell]),
            "cell {cell}"
        );
    }
}

/// `--timings`: each stage's wall time, in JSON as a `timings` object per row (absent
/// without the flag) and on stderr otherwise.
#[test]
fn timings_report_every_stage() {
    let files = Files::new();
    let labels = files.path("celltype.npy");
    let labels = labels.to_str().unwrap();
    let row = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--json", "--timings"],
    ));
    let timings = row["timings"].as_object().expect("a timings object");
    for stage in [
        "reading the inputs",
        "exact kNN graph and silhouettes",
        "kBET",
    ] {
        let seconds = timings[stage].as_f64().unwrap_or(-1.0);
        assert!(seconds >= 0.0, "{stage}: {timings:?}");
    }
    let plain = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--json"],
    ));
    assert!(!plain.contains_key("timings"));
    let table = score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--timings", "--quiet"],
    );
    stdout(&table);
    let err = String::from_utf8_lossy(&table.stderr);
    assert!(
        err.contains("stage times of x (wall seconds):") && err.contains("  total "),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let files = Files::new();
    assert_fails_with(
        &files,
        "absent.npy",
        "batch.npy",
        &[],
        "absent.npy: no such file",
    );
    assert_fails_with(
        &files,
        "x.npy",
        "absent.npy",
        &[],
        "absent.npy: no such file",
    );
}

#[test]
fn wrong_shapes() {
    let files = Files::new();
    assert_fails_with(
        &files,
        "batch.npy",
        "batch.npy",
        &[],
        "the embedding must have shape [cells, dims], got [60]",
    );
    assert_fails_with(
        &files,
        "x.npy",
        "x.npy",
        &[],
        "batch labels must have shape [60] (one per cell of the embedding), got [60, 4]",
    );
    assert_fails_with(&files, "x.npy", "batch_short.npy", &[], "got [59]");
}

#[test]
fn wrong_dtypes_and_values() {
    let files = Files::new();
    assert_fails_with(
        &files,
        "x_int.npy",
        "batch.npy",
        &[],
        "the embedding must be a float array",
    );
    assert_fails_with(
        &files,
        "x.npy",
        "batch_float.npy",
        &[],
        "batch labels must be integer codes",
    );
    assert_fails_with(
        &files,
        "x.npy",
        "batch_negative.npy",
        &[],
        "negative label -1 at index 0",
    );
}

#[test]
fn unreadable_or_unknown_files() {
    let files = Files::new();
    assert_fails_with(&files, "x.csv", "batch.npy", &[], "unsupported file type");
    assert_fails_with(
        &files,
        "broken.npy",
        "batch.npy",
        &[],
        "cannot read it as .npy",
    );
}

#[test]
fn invalid_k_is_a_metric_error() {
    let files = Files::new();
    assert_fails_with(
        &files,
        "x.npy",
        "batch.npy",
        &["--k", "60"],
        "k = 60 is invalid for 60 cells",
    );
}

#[test]
fn usage_errors_come_from_clap() {
    let out = diffbio(&["score", "--embedding", "x.npy"]);
    let err = stderr_of_failure(&out);
    assert!(err.contains("--batch <BATCH>"), "{err}");
    assert!(Path::new(env!("CARGO_BIN_EXE_diffbio")).exists());
}

#[test]
fn sparse_codes_score_as_dense_codes() {
    // Codes like 4,000,000,000 used to make a metric allocate by the largest code (SIGABRT).
    let files = Files::new();
    let celltype = files.path("celltype.npy");
    let labels = ["--labels", celltype.to_str().unwrap(), "--json"];
    let dense = json(&score(&files, "x.npy", "batch.npy", &labels));
    let sparse = json(&score(&files, "x.npy", "batch_ids.npy", &labels));
    assert!(dense.len() > 5, "{dense:?}");
    assert_eq!(dense, sparse);
    // Sparse cell-type ids too: the same scores, the per-label kBET under the ids.
    let ids = files.path("celltype_ids.npy");
    let mut by_ids = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", ids.to_str().unwrap(), "--json"],
    ));
    let mut dense = dense;
    let per_label = by_ids.remove("kbet_per_label").unwrap();
    let per_code = dense.remove("kbet_per_label").unwrap();
    assert_eq!(by_ids, dense);
    let names: Vec<&String> = per_label.as_object().unwrap().keys().collect();
    assert!(
        names.iter().any(|n| n.as_str() == "4000000000"),
        "{names:?}"
    );
    assert_eq!(
        per_label.as_object().unwrap().len(),
        per_code.as_object().unwrap().len()
    );
}

#[test]
fn progress_is_silent_off_a_terminal_and_with_quiet() {
    // The tests' stderr is a pipe, not a terminal: no bars, with or without --quiet.
    let files = Files::new();
    for extra in [
        &["--json"][..],
        &["--json", "--quiet"][..],
        &["--json", "-q"][..],
    ] {
        let out = score(&files, "x.npy", "batch.npy", extra);
        assert!(out.status.success(), "{extra:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `--skip` leaves metrics out: not computed (no kBET stage, the graph-only pass without
/// the silhouettes), listed as `left_out`, the others as without it; a name that is not a
/// metric's is refused.
#[test]
fn skipped_metrics_are_not_computed() {
    let files = Files::new();
    let labels = files.path("celltype.npy");
    let labels = labels.to_str().unwrap();
    let full = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--json"],
    ));
    let skip = "kbet,silhouette_label,isolated_labels,silhouette_batch";
    let row = json(&score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--json", "--timings", "--skip", skip],
    ));
    let timings = row["timings"].as_object().expect("a timings object");
    assert!(timings.contains_key("exact kNN graph"), "{timings:?}");
    assert!(!timings.contains_key("kBET"), "{timings:?}");
    let left_out: Vec<&str> = row["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        left_out,
        [
            "isolated_labels",
            "silhouette_label",
            "kbet",
            "silhouette_batch"
        ]
    );
    for name in left_out.iter().chain(&["kbet_per_label"]) {
        assert!(!row.contains_key(*name), "{name}");
    }
    for name in [
        "ilisi",
        "clisi",
        "bras",
        "graph_connectivity",
        "nmi_kmeans",
        "knn_accuracy",
    ] {
        assert_eq!(row[name], full[name], "{name}");
    }
    let table = score(
        &files,
        "x.npy",
        "batch.npy",
        &["--labels", labels, "--skip", "kbet"],
    );
    let out = stdout(&table);
    assert!(out.contains("left out (--skip): kbet"), "{out}");
    assert_fails_with(
        &files,
        "x.npy",
        "batch.npy",
        &["--skip", "kBET"],
        "--skip: no metric is named `kBET`",
    );
}
