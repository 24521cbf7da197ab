//! Exact metrics against scikit-learn's own numbers and against their definitions.

use diffbio_metrics::{
    self as metrics, average_precision, roc_auc, silhouette_samples, Between, Distance,
};
use diffbio_testing::Rng;
use serde_json::Value;

#[test]
fn average_precision_equals_scikit_learn() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/average_precision_sklearn.json"
    );
    let data: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = data["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    for case in cases {
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let labels: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let want = case["expected"].as_f64().unwrap();
        let got = average_precision(&scores, &labels).unwrap();
        assert!(
            (got - want).abs() < 1e-12,
            "{}: {got} vs scikit-learn {want}",
            case["id"]
        );
    }
}

/// AP from its definition: precision at each positive's threshold (ties included), averaged.
fn brute_force_ap(s: &[f64], y: &[bool]) -> f64 {
    let n_pos = y.iter().filter(|&&b| b).count() as f64;
    let mut ap = 0.0;
    let mut thresholds: Vec<f64> = s
        .iter()
        .zip(y)
        .filter(|(_, &b)| b)
        .map(|(&v, _)| v)
        .collect();
    thresholds.sort_by(|a, b| b.total_cmp(a));
    thresholds.dedup();
    let mut prev_recall = 0.0;
    for t in thresholds {
        let tp = s.iter().zip(y).filter(|(&v, &b)| b && v >= t).count() as f64;
        let fp = s.iter().zip(y).filter(|(&v, &b)| !b && v >= t).count() as f64;
        ap += (tp / n_pos - prev_recall) * tp / (tp + fp);
        prev_recall = tp / n_pos;
    }
    ap
}

#[test]
fn average_precision_matches_its_definition_with_ties_and_infinities() {
    let mut rng = Rng::new(30);
    for n in [1usize, 3, 50, 400] {
        let mut s: Vec<f64> = (0..n).map(|_| (rng.below(9) as f64 - 4.0) * 0.5).collect();
        s[0] = f64::INFINITY;
        if n > 2 {
            s[1] = f64::NEG_INFINITY;
        }
        let mut y: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.4).collect();
        y[n - 1] = true;
        let got = average_precision(&s, &y).unwrap();
        let want = brute_force_ap(&s, &y);
        assert!((got - want).abs() < 1e-12, "n={n}: {got} vs {want}");
        let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        assert!((average_precision(&s32, &y).unwrap() - want).abs() < 1e-12);
    }
}

#[test]
fn perfect_and_reversed_rankings() {
    let s = [0.9f32, 0.8, 0.7, 0.2, 0.1];
    let y = [true, true, true, false, false];
    assert_eq!(average_precision(&s, &y).unwrap(), 1.0);
    assert_eq!(roc_auc(&s, &y).unwrap(), 1.0);
    let reversed: Vec<bool> = y.iter().map(|b| !b).collect();
    assert_eq!(roc_auc(&s, &reversed).unwrap(), 0.0);
    // The two positives ranked last among five: AP = (1/2)(1/4) + (1/2)(2/5).
    let ap = average_precision(&s, &reversed).unwrap();
    assert!((ap - (0.125 + 0.2)).abs() < 1e-15, "{ap}");
}

#[test]
fn average_precision_errors() {
    assert!(matches!(
        average_precision(&[0.1f64, 0.2], &[true]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        average_precision::<f64>(&[], &[]),
        Err(metrics::Error::Empty { .. })
    ));
    assert!(matches!(
        average_precision(&[0.1f32, 0.2], &[false, false]),
        Err(metrics::Error::SingleClass { .. })
    ));
    assert!(matches!(
        average_precision(&[f64::NAN, 0.2], &[true, false]),
        Err(metrics::Error::NaN { index: 0, .. })
    ));
    assert_eq!(
        average_precision(&[0.1f32, 0.2], &[true, true]),
        Ok(1.0),
        "no negatives: every threshold is exact"
    );
}

// ---- neighbourhood metrics ----

use diffbio_metrics::{batch_entropy, knn, knn_accuracy, KnnGraph};
use diffbio_pairwise::BLOCK;

#[test]
fn knn_is_exact_with_ties_broken_by_index() {
    let mut rng = Rng::new(31);
    // Past BLOCK cells the pairs are visited by tiles of two blocks: an even number of
    // blocks (4), then an odd one (3).
    for (n, d, k, offset) in [
        (2usize, 1usize, 1usize, 0.0f32),
        (40, 3, 5, 0.0),
        (200, 2, 199, 0.0),
        (4 * BLOCK - 48, 4, 12, 0.0),
        (2 * BLOCK + 76, 3, 9, 3.0e4),
    ] {
        // Integer coordinates: many exactly tied distances, all within the slack of the
        // rounded tiles; the offset is removed by centring (else the products' rounding
        // would exceed the gaps between distances).
        let x: Vec<f32> = (0..n * d).map(|_| rng.below(4) as f32 + offset).collect();
        let g = knn(&x, d, k).unwrap();
        for i in 0..n {
            let mut all: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        (0..d)
                            .map(|c| (x[i * d + c] - x[j * d + c]).powi(2) as f64)
                            .sum::<f64>(),
                        j,
                    )
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = all[..k].iter().map(|p| p.1 as u32).collect();
            assert_eq!(g.neighbors(i), want.as_slice(), "row {i}");
            assert!(g
                .distances(i)
                .iter()
                .zip(&all[..k])
                .all(|(a, b)| (a - b.0.sqrt()).abs() < 1e-12));
        }
        assert_eq!(g.truncate(1).unwrap().neighbors(0), &g.neighbors(0)[..1]);
    }
}

#[test]
fn a_truncated_graph_is_the_graph_of_fewer_neighbours() {
    let mut rng = Rng::new(17);
    let (n, d) = (250, 4);
    let x: Vec<f64> = (0..n * d).map(|_| rng.normal()).collect();
    let wide = knn(&x, d, 12).unwrap();
    let narrow = wide.truncate(5).unwrap();
    assert_eq!((narrow.n(), narrow.k()), (n, 5));
    assert_eq!(narrow, knn(&x, d, 5).unwrap());
    assert_ne!(narrow, wide);
    assert_eq!(narrow.truncate(2).unwrap(), knn(&x, d, 2).unwrap());
    // A view of 5 neighbours cannot widen again to the 12 its rows hold.
    assert!(matches!(
        narrow.truncate(6),
        Err(metrics::Error::InvalidK { k: 6, .. })
    ));
    // Graphs of the same rows from elsewhere are equal, however they are stored.
    let rows: Vec<Vec<(usize, f64)>> = (0..n)
        .map(|i| {
            let row = narrow.neighbors(i).iter().map(|&j| j as usize);
            row.zip(narrow.distances(i).iter().copied()).collect()
        })
        .collect();
    assert_eq!(KnnGraph::from_neighbours(rows).unwrap(), narrow);
}

#[test]
fn batch_entropy_and_accuracy_on_mixed_and_separated_data() {
    let mut rng = Rng::new(32);
    let n = 300;
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
    let embed = |offset: f64, rng: &mut Rng| -> Vec<f64> {
        (0..n)
            .flat_map(|i| [rng.normal() + offset * (i % 3) as f64, rng.normal()])
            .collect()
    };
    let mixed = knn(&embed(0.0, &mut rng), 2, 30).unwrap();
    let separated = knn(&embed(50.0, &mut rng), 2, 30).unwrap();
    let h_mixed = batch_entropy(&mixed, &labels).unwrap();
    let h_separated = batch_entropy(&separated, &labels).unwrap();
    assert!(
        h_mixed.mean > 0.9 && h_separated.mean == 0.0,
        "{} {}",
        h_mixed.mean,
        h_separated.mean
    );
    assert_eq!(h_mixed.per_cell.len(), n);
    assert_eq!(knn_accuracy(&separated, &labels).unwrap().mean, 1.0);
    assert!(knn_accuracy(&mixed, &labels).unwrap().mean < 0.6);
}

#[test]
fn neighbourhood_metric_errors() {
    let x = [0.0f32, 1.0, 2.0, 3.0];
    assert!(matches!(knn(&x, 3, 1), Err(metrics::Error::Shape { .. })));
    assert!(matches!(knn(&x, 0, 1), Err(metrics::Error::Shape { .. })));
    assert!(matches!(
        knn::<f32>(&[], 2, 1),
        Err(metrics::Error::Shape { .. })
    ));
    assert!(matches!(
        knn(&x, 1, 4),
        Err(metrics::Error::InvalidK { k: 4, n: 4 })
    ));
    assert!(matches!(
        knn(&x, 1, 0),
        Err(metrics::Error::InvalidK { .. })
    ));
    assert!(matches!(
        knn(&[0.0f32, f32::NAN, 1.0], 1, 1),
        Err(metrics::Error::NaN { index: 1, .. })
    ));
    let g = knn(&x, 1, 2).unwrap();
    assert!(matches!(
        batch_entropy(&g, &[0, 0, 0, 0]),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    assert!(matches!(
        batch_entropy(&g, &[0, 1]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        knn_accuracy(&g, &[0, 1, 1]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        g.truncate(3),
        Err(metrics::Error::InvalidK { .. })
    ));
}

/// The real PBMC data of `../shared/data/pbmc-3chem` (not copied into the repository: its
/// licence is GPL-3): batch codes, cell-type codes and the two embeddings with their dims;
/// `None` (and a SKIPPED line) where the data is absent.
struct Pbmc {
    dir: std::path::PathBuf,
    batch: Vec<u32>,
    celltype: Vec<u32>,
    embeddings: Vec<(&'static str, Vec<f32>, usize)>,
}

fn pbmc() -> Option<Pbmc> {
    use candle_core::{DType, Tensor};
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pbmc-3chem");
    if !dir.join("labels.json").exists() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "SKIPPED: {} is absent", dir.display());
        return None;
    }
    let read = |name: &str| Tensor::read_npy(dir.join(name)).unwrap();
    let codes = |name: &str| read(name).to_dtype(DType::U32).unwrap().to_vec1().unwrap();
    let embeddings = ["X_pca", "X_pca_harmony"]
        .into_iter()
        .map(|name| {
            let x = read(&format!("{name}.npy"));
            let d = x.dim(1).unwrap();
            (name, x.flatten_all().unwrap().to_vec1().unwrap(), d)
        })
        .collect();
    Some(Pbmc {
        batch: codes("batch.npy"),
        celltype: codes("celltype.npy"),
        embeddings,
        dir,
    })
}

/// scib-metrics runs k-means from one k-means++ start, so its NMI/ARI on the PBMC data move
/// with the seed (`tests/data/scib_kmeans_seeds.json`, seeds 0..9); diffbio keeps the best
/// of `KMEANS_STARTS` starts, and over seeds 0..9 every one of its scores lands inside
/// scib's spread, on both embeddings.
#[test]
fn kmeans_nmi_ari_land_within_scibs_seed_spread_when_the_shared_data_is_present() {
    let Some(data) = pbmc() else { return };
    let fixture: Value = serde_json::from_str(include_str!("data/scib_kmeans_seeds.json")).unwrap();
    for (name, x, d) in &data.embeddings {
        let scib = &fixture["embeddings"][*name];
        let spread = |key: &str| {
            let values: Vec<f64> = scib[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
            (
                lowest,
                values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            )
        };
        let (nmi, ari) = (spread("nmi"), spread("ari"));
        for seed in 0..10 {
            let got = metrics::nmi_ari_kmeans(x, *d, &data.celltype, seed).unwrap();
            assert!(
                (nmi.0..=nmi.1).contains(&got.nmi) && (ari.0..=ari.1).contains(&got.ari),
                "{name}, seed {seed}: NMI {:.3} (scib {:.3}..{:.3}), ARI {:.3} (scib {:.3}..{:.3})",
                got.nmi,
                nmi.0,
                nmi.1,
                got.ari,
                ari.0,
                ari.1
            );
        }
    }
}

/// Checked against the reference metrics shipped in the data's labels.json.
#[test]
fn pbmc_reference_metrics_when_the_shared_data_is_present() {
    let Some(data) = pbmc() else { return };
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(data.dir.join("labels.json")).unwrap())
            .unwrap();
    for (name, x, d) in &data.embeddings {
        let reference = &info["info"]["reference_metrics"][name];
        let g30 = knn(x, *d, 30).unwrap();
        let entropy = batch_entropy(&g30, &data.batch).unwrap().mean;
        let accuracy = knn_accuracy(&g30.truncate(15).unwrap(), &data.celltype)
            .unwrap()
            .mean;
        let want_entropy = reference["batch_entropy_mean"].as_f64().unwrap();
        let want_accuracy = reference["celltype_knn15_accuracy"].as_f64().unwrap();
        assert!(
            (entropy - want_entropy).abs() < 1e-9,
            "{name}: batch entropy {entropy} vs {want_entropy}"
        );
        assert!(
            (accuracy - want_accuracy).abs() < 1e-12,
            "{name}: 15-NN accuracy {accuracy} vs {want_accuracy}"
        );
    }
}

/// Checked against scib-metrics 0.5.10 itself (tests/data/scib_pbmc.json, written by
/// scripts/make_scib_fixture.py under the same exact kNN graph). scib-metrics computes in
/// float32 (JAX), diffbio in float64: real-valued scores agree to the tolerance below.
#[test]
fn scib_metrics_reference_on_pbmc_when_the_shared_data_is_present() {
    let Some(data) = pbmc() else { return };
    let fixture: Value = serde_json::from_str(include_str!("data/scib_pbmc.json")).unwrap();
    let (b, c) = (&data.batch, &data.celltype);
    for (name, x, d) in &data.embeddings {
        let want = &fixture["embeddings"][name];
        // scib's 90 (LISI) and 15 (graph connectivity) neighbours count the cell itself.
        let g89 = knn(x, *d, 89).unwrap();
        let ours = [
            ("ilisi", metrics::ilisi(&g89, b).unwrap()),
            ("clisi", metrics::clisi(&g89, c).unwrap()),
            (
                "graph_connectivity",
                metrics::graph_connectivity(&g89.truncate(14).unwrap(), c).unwrap(),
            ),
            (
                "silhouette_label",
                metrics::silhouette_label(x, *d, c).unwrap(),
            ),
            (
                "silhouette_batch",
                metrics::silhouette_batch(x, *d, c, b).unwrap(),
            ),
            ("bras", metrics::bras(x, *d, c, b).unwrap()),
            (
                "isolated_labels",
                metrics::isolated_labels(x, *d, c, b).unwrap(),
            ),
        ];
        for (metric, value) in ours {
            let reference = want[metric].as_f64().unwrap();
            eprintln!(
                "{name} {metric}: {value} vs scib {reference} (|Δ| {:.1e})",
                (value - reference).abs()
            );
        }
        for (metric, value) in ours {
            let reference = want[metric].as_f64().unwrap();
            assert!(
                (value - reference).abs() < 1e-6,
                "{name} {metric}: {value} vs scib {reference}"
            );
        }
        // kBET: scib's 50 neighbours count the cell itself; its diffusion-space search is
        // replaced by the exact one in the fixture (scib's own pynndescent value is recorded
        // beside it and equal on this data).
        let kbet = metrics::kbet(&g89.truncate(49).unwrap(), b, c).unwrap();
        let want_kbet = want["kbet_exact_knn"].as_f64().unwrap();
        eprintln!("{name} kbet: {} vs scib {want_kbet}", kbet.score);
        for label in &kbet.per_label {
            let reference = want["kbet_exact_knn_per_label"][label.label.to_string()].as_f64();
            eprintln!(
                "  label {} ({} cells): {:?} vs {reference:?}",
                label.label, label.cells, label.acceptance
            );
            match (label.acceptance, reference) {
                (Some(ours), Some(theirs)) => assert!((ours - theirs).abs() < 1e-12),
                (ours, theirs) => assert_eq!(ours, theirs, "{name} label {}", label.label),
            }
        }
        assert!((kbet.score - want_kbet).abs() < 1e-12, "{name} kbet");
        // PCR: scib's float32 SVD against the closed form here.
        let pcr = metrics::pcr(x, *d, b).unwrap();
        let want_pcr = want["pcr"].as_f64().unwrap();
        eprintln!(
            "{name} pcr: {pcr} vs scib {want_pcr} (|Δ| {:.1e})",
            (pcr - want_pcr).abs()
        );
        assert!((pcr - want_pcr).abs() < 1e-6, "{name} pcr");
        let (pre, pre_dims) = (&data.embeddings[0].1, data.embeddings[0].2);
        let comparison = metrics::pcr_comparison(pre, pre_dims, x, *d, b).unwrap();
        let want_comparison = want["pcr_comparison"].as_f64().unwrap();
        eprintln!("{name} pcr_comparison: {comparison} vs scib {want_comparison}");
        assert!(
            (comparison - want_comparison).abs() < 1e-6,
            "{name} pcr_comparison"
        );
        let lisi = metrics::lisi(&g89, b).unwrap();
        for (i, want) in want["lisi_batch_per_cell_head"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let want = want.as_f64().unwrap();
            assert!(
                (lisi.per_cell[i] - want).abs() < 1e-5 * want,
                "{name} LISI of cell {i}"
            );
        }
    }
}

/// Two batches: interleaved along a line (mixed) or placed far apart (separated); the cell
/// types follow the same two layouts the other way round.
fn mixing_layouts() -> (Vec<f64>, Vec<f64>, Vec<u32>) {
    let n = 200;
    let mixed: Vec<f64> = (0..n)
        .map(|i| i as f64 + 0.01 * ((i * 37) % 11) as f64)
        .collect();
    let separated: Vec<f64> = (0..n)
        .map(|i| {
            if i % 2 == 0 {
                i as f64
            } else {
                10_000.0 + i as f64
            }
        })
        .collect();
    let labels = (0..n as u32).map(|i| i % 2).collect();
    (mixed, separated, labels)
}

#[test]
fn lisi_scores_mixed_and_separated_layouts() {
    let (mixed, separated, labels) = mixing_layouts();
    let mixed_graph = knn(&mixed, 1, 89).unwrap();
    let separated_graph = knn(&separated, 1, 89).unwrap();
    let mixed_ilisi = metrics::ilisi(&mixed_graph, &labels).unwrap();
    let separated_ilisi = metrics::ilisi(&separated_graph, &labels).unwrap();
    assert!(mixed_ilisi > 0.95, "{mixed_ilisi}");
    assert!(separated_ilisi.abs() < 1e-9, "{separated_ilisi}");
    // The same labels read as cell types: cLISI is the reverse.
    let mixed_clisi = metrics::clisi(&mixed_graph, &labels).unwrap();
    let separated_clisi = metrics::clisi(&separated_graph, &labels).unwrap();
    assert!(mixed_clisi < 0.05, "{mixed_clisi}");
    assert!((separated_clisi - 1.0).abs() < 1e-9, "{separated_clisi}");
    let per_cell = metrics::lisi(&mixed_graph, &labels).unwrap();
    assert!(per_cell
        .per_cell
        .iter()
        .all(|&v| (1.0..=2.0 + 1e-9).contains(&v)));
}

#[test]
fn silhouettes_and_connectivity_on_mixed_and_separated_layouts() {
    let (mixed, separated, labels) = mixing_layouts();
    let one_type = vec![0u32; labels.len()];
    // batches mixed: batch silhouettes near 1; separated: near 0
    let mixed_asw = metrics::silhouette_batch(&mixed, 1, &one_type, &labels).unwrap();
    let separated_asw = metrics::silhouette_batch(&separated, 1, &one_type, &labels).unwrap();
    assert!(
        mixed_asw > 0.95 && separated_asw < 0.05,
        "{mixed_asw} {separated_asw}"
    );
    // as cell types: the label silhouette is high when separated, middling when mixed
    let kept = metrics::silhouette_label(&separated, 1, &labels).unwrap();
    let lost = metrics::silhouette_label(&mixed, 1, &labels).unwrap();
    assert!(kept > 0.95 && (lost - 0.5).abs() < 0.05, "{kept} {lost}");
    // separated clusters: each type is one connected neighbourhood
    let g = knn(&separated, 1, 14).unwrap();
    assert_eq!(metrics::graph_connectivity(&g, &labels).unwrap(), 1.0);
    // an isolated type present in one batch only scores its own silhouette
    let iso = metrics::isolated_labels(&separated, 1, &labels, &one_type).unwrap();
    assert!((iso - kept).abs() < 1e-12);
    let d2: Vec<f64> = separated.iter().flat_map(|&v| [v, 0.5 * v]).collect();
    let bras = metrics::bras(&d2, 2, &one_type, &labels).unwrap();
    assert!((0.0..=1.0).contains(&bras), "{bras}");
}

/// The silhouette's definition, pair by pair in f64.
fn brute_force_silhouettes(x: &[f64], d: usize, labels: &[u32], between: Between) -> Vec<f64> {
    let n = labels.len();
    let clusters = *labels.iter().max().unwrap() as usize + 1;
    let size = |c: usize| labels.iter().filter(|&&l| l as usize == c).count();
    (0..n)
        .map(|i| {
            let mut sums = vec![0.0f64; clusters];
            for j in (0..n).filter(|&j| j != i) {
                let d2: f64 = (0..d).map(|c| (x[i * d + c] - x[j * d + c]).powi(2)).sum();
                sums[labels[j] as usize] += d2.sqrt();
            }
            let own = labels[i] as usize;
            if size(own) < 2 {
                return 0.0;
            }
            let a = sums[own] / (size(own) - 1) as f64;
            let others = (0..clusters).filter(|&c| c != own && size(c) > 0);
            let b = match between {
                Between::Nearest => others
                    .map(|c| sums[c] / size(c) as f64)
                    .fold(f64::INFINITY, f64::min),
                Between::MeanOther => others.map(|c| sums[c]).sum::<f64>() / (n - size(own)) as f64,
            };
            (b - a) / a.max(b)
        })
        .collect()
}

#[test]
fn euclidean_silhouettes_match_their_definition_across_tiles() {
    let mut rng = Rng::new(47);
    // Past BLOCK cells the pairs are visited by tiles of two blocks (3 blocks: an odd
    // count); label 3 is a single cell, which scores 0.
    for (n, d) in [(7usize, 2usize), (300, 3), (2 * BLOCK + 76, 5)] {
        let x: Vec<f64> = rng.normals(n * d);
        let mut labels: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
        labels[n / 2] = 3;
        for between in [Between::Nearest, Between::MeanOther] {
            let got = silhouette_samples(&x, d, &labels, Distance::Euclidean, between).unwrap();
            let want = brute_force_silhouettes(&x, d, &labels, between);
            assert_eq!(got[n / 2], 0.0);
            // The distances come from f32 tiles, each within a relative few 1e-7 of f64's
            // (2.6e-7 at most measured here, on these low-dimensional normals).
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() < 1e-6, "n {n} cell {i}: {g} vs {w}");
            }
        }
    }
}

#[test]
fn all_pairs_results_do_not_depend_on_the_thread_count() {
    // Each block of cells sees its tiles in a fixed order, so sums are bitwise reproducible.
    let mut rng = Rng::new(53);
    let (n, d) = (900, 4);
    let x = rng.normals(n * d);
    let labels: Vec<u32> = (0..n).map(|_| rng.below(5) as u32).collect();
    let batches: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
    let config = metrics::BenchmarkConfig::default();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let s = silhouette_samples(&x, d, &labels, Distance::Euclidean, Between::Nearest);
                // Every score, the batch silhouettes and k-means' parallel means included.
                let scores = metrics::benchmark(&x, d, &batches, Some(&labels), None, config);
                (s.unwrap(), knn(&x, d, 7).unwrap(), scores.unwrap())
            })
    };
    let one_thread = run(1);
    for threads in [2, 3] {
        assert!(run(threads) == one_thread, "{threads} threads");
    }
}

/// scikit-learn's NMI and ARI of fixed label pairs (tests/data/scib_pbmc.json).
#[test]
fn nmi_and_ari_equal_scikit_learn_on_pbmc_label_pairs_when_the_shared_data_is_present() {
    let Some(data) = pbmc() else { return };
    let fixture: Value = serde_json::from_str(include_str!("data/scib_pbmc.json")).unwrap();
    let c = &data.celltype;
    let other: Vec<u32> = (0..c.len())
        .map(|i| (c[i] * 7 + i as u32 % 3) % 11)
        .collect();
    for (key, predicted) in [
        ("celltype_vs_batch", &data.batch),
        ("celltype_vs_other", &other),
    ] {
        let want = &fixture["nmi_ari"][key];
        let nmi = metrics::nmi(c, predicted).unwrap();
        let ari = metrics::ari(c, predicted).unwrap();
        assert!(
            (nmi - want[0].as_f64().unwrap()).abs() < 1e-12,
            "{key} NMI {nmi}"
        );
        assert!(
            (ari - want[1].as_f64().unwrap()).abs() < 1e-12,
            "{key} ARI {ari}"
        );
    }
}

/// NMI and ARI against their definitions on random labellings: symmetric, invariant to
/// renaming, 1 for the same partition; ARI ≈ 0 for independent labellings.
#[test]
fn nmi_and_ari_properties() {
    let mut rng = Rng::new(3);
    for (n, a, b) in [(50usize, 3u32, 4u32), (400, 7, 5), (2000, 2, 9)] {
        let u: Vec<u32> = (0..n).map(|_| rng.below(a as usize) as u32).collect();
        let v: Vec<u32> = (0..n).map(|_| rng.below(b as usize) as u32).collect();
        let renamed: Vec<u32> = u.iter().map(|&l| 100 - l).collect();
        assert!((metrics::nmi(&u, &renamed).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(metrics::ari(&u, &renamed).unwrap(), 1.0);
        let (nmi, ari) = (metrics::nmi(&u, &v).unwrap(), metrics::ari(&u, &v).unwrap());
        assert!((nmi - metrics::nmi(&v, &u).unwrap()).abs() < 1e-12);
        assert!((ari - metrics::ari(&v, &u).unwrap()).abs() < 1e-12);
        assert!((0.0..0.2).contains(&nmi), "{nmi}");
        assert!(ari.abs() < 0.05, "{ari}");
    }
}

/// k-means finds well-separated clusters, is deterministic for a seed, and its inertia is
/// the squared distances to the returned centroids.
#[test]
fn kmeans_recovers_separated_clusters() {
    let mut rng = Rng::new(9);
    let (k, per, d) = (6usize, 150usize, 5usize);
    let centres: Vec<f64> = (0..k * d).map(|_| 20.0 * rng.normal()).collect();
    let mut x = Vec::new();
    let mut truth = Vec::new();
    for c in 0..k {
        for _ in 0..per {
            x.extend((0..d).map(|j| centres[c * d + j] + 0.5 * rng.normal()));
            truth.push(c as u32);
        }
    }
    let fit = metrics::kmeans(&x, d, k, 0).unwrap();
    assert_eq!(fit, metrics::kmeans(&x, d, k, 0).unwrap());
    assert_eq!(metrics::ari(&truth, &fit.labels).unwrap(), 1.0);
    let inertia: f64 = x
        .chunks(d)
        .zip(&fit.labels)
        .map(|(row, &c)| {
            let centre = &fit.centroids[c as usize * d..(c as usize + 1) * d];
            row.iter()
                .zip(centre)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
        })
        .sum();
    assert!((fit.inertia - inertia).abs() < 1e-9 * inertia);
    let scores = metrics::nmi_ari_kmeans(&x, d, &truth, 0).unwrap();
    assert_eq!((scores.nmi, scores.ari), (1.0, 1.0));
}

/// kBET: mixed batches are accepted, batches in separate halves of each cell type
/// rejected; a label below 10 cells is skipped and reported as such.
#[test]
fn kbet_on_mixed_and_separated_layouts() {
    // Two cell types far apart on a line, 200 cells each, and a third of 6 cells.
    let x: Vec<f64> = (0..406)
        .map(|i| match i {
            0..200 => i as f64,
            200..400 => 10_000.0 + i as f64,
            _ => 50_000.0 + i as f64,
        })
        .collect();
    let types: Vec<u32> = (0..406).map(|i| (i / 200) as u32).collect();
    let graph = knn(&x, 1, 49).unwrap();
    let interleaved: Vec<u32> = (0..406).map(|i| i % 2).collect();
    let halves: Vec<u32> = (0..406).map(|i| u32::from(i % 200 >= 100)).collect();
    let mixed = metrics::kbet(&graph, &interleaved, &types).unwrap();
    let apart = metrics::kbet(&graph, &halves, &types).unwrap();
    assert!(mixed.score > 0.8, "mixed {}", mixed.score);
    assert!(apart.score < 0.5, "apart {}", apart.score);
    for result in [&mixed, &apart] {
        let cells: Vec<usize> = result.per_label.iter().map(|l| l.cells).collect();
        assert_eq!(cells, [200, 200, 6]);
        assert!(result.per_label[2].acceptance.is_none());
        let scored: Vec<f64> = result.per_label[..2]
            .iter()
            .map(|l| l.acceptance.unwrap())
            .collect();
        assert_eq!(result.score, (scored[0] + scored[1]) / 2.0);
    }
}

/// PCR: 0 when every batch has the same mean, 1 when the batches are points.
#[test]
fn pcr_limits() {
    let batches = [0u32, 0, 1, 1];
    assert_eq!(
        metrics::pcr(&[0.0f64, 2.0, 0.0, 2.0], 1, &batches).unwrap(),
        0.0
    );
    assert_eq!(
        metrics::pcr(&[1.0f64, 1.0, 5.0, 5.0], 1, &batches).unwrap(),
        1.0
    );
}

#[test]
fn clustering_kbet_and_pcr_errors() {
    let (mixed, _, labels) = mixing_layouts();
    let g = knn(&mixed, 1, 14).unwrap();
    let one = vec![0u32; labels.len()];
    assert!(matches!(
        metrics::kbet(&g, &one, &labels),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    assert!(matches!(
        metrics::kbet(&g, &labels[1..], &labels),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    // every label below 10 cells: nothing to score
    let singletons: Vec<u32> = (0..labels.len() as u32).collect();
    assert!(matches!(
        metrics::kbet(&g, &labels, &singletons),
        Err(metrics::Error::Undefined { metric: "kbet", .. })
    ));
    assert!(matches!(
        metrics::kmeans(&mixed, 1, 0, 0),
        Err(metrics::Error::InvalidK { k: 0, .. })
    ));
    assert!(matches!(
        metrics::kmeans(&mixed[..3], 1, 4, 0),
        Err(metrics::Error::InvalidK { k: 4, n: 3 })
    ));
    let mut nan = mixed.clone();
    nan[5] = f64::INFINITY;
    assert!(matches!(
        metrics::kmeans(&nan, 1, 2, 0),
        Err(metrics::Error::NaN { index: 5, .. })
    ));
    assert!(matches!(
        metrics::nmi(&labels, &labels[1..]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        metrics::ari(&[], &[]),
        Err(metrics::Error::Empty { .. })
    ));
    assert!(matches!(
        metrics::pcr(&vec![2.0f64; labels.len()], 1, &labels),
        Err(metrics::Error::ZeroVariance { .. })
    ));
    assert!(matches!(
        metrics::pcr(&mixed, 1, &labels[2..]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    // batch means equal before integration: the comparison is undefined
    let batches = [0u32, 0, 1, 1];
    let flat = [0.0f64, 2.0, 0.0, 2.0];
    assert!(matches!(
        metrics::pcr_comparison(&flat, 1, &flat, 1, &batches),
        Err(metrics::Error::ZeroVariance { .. })
    ));
    assert!(matches!(
        metrics::pcr_comparison(&flat, 1, &flat, 1, &[0, 0, 0, 0]),
        Err(metrics::Error::TooFewLabels { .. })
    ));
}

#[test]
fn integration_metric_errors() {
    let (mixed, _, labels) = mixing_layouts();
    let g = knn(&mixed, 1, 14).unwrap();
    let one = vec![0u32; labels.len()];
    assert!(matches!(
        metrics::ilisi(&g, &one),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    assert!(matches!(
        metrics::clisi(&g, &labels[..10]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        metrics::graph_connectivity(&g, &labels[1..]),
        Err(metrics::Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        metrics::silhouette_label(&mixed, 1, &one),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    let mut nan = mixed.clone();
    nan[3] = f64::NAN;
    assert!(matches!(
        metrics::silhouette_label(&nan, 1, &labels),
        Err(metrics::Error::NaN { index: 3, .. })
    ));
    assert!(matches!(
        metrics::bras(&mixed, 1, &labels, &one),
        Err(metrics::Error::TooFewLabels { .. })
    ));
    assert!(matches!(
        metrics::silhouette_batch(&mixed, 3, &labels, &labels),
        Err(metrics::Error::Shape { .. })
    ));
    let tiny = knn(&mixed[..4], 1, 1).unwrap();
    assert!(matches!(
        metrics::lisi(&tiny, &labels[..4]),
        Err(metrics::Error::InvalidK { .. })
    ));
}

/// A chain of cells (each one's nearest neighbour is the one after it) is as deep as it
/// is long: its strong components must be found without recursing once per cell. Run on a
/// thread with a 256 KiB stack, where a recursive search over 10,000 cells overflows.
#[test]
fn graph_connectivity_of_a_long_chain_does_not_recurse_per_cell() {
    let n = 20_000;
    // d = 1, the gap from cell i to i + 1 is 2(n − i) − 1: shrinking, so i's nearest is i + 1.
    let x: Vec<f64> = (0..n).map(|i| ((n - i) * (n - i)) as f64).collect();
    let labels: Vec<u32> = (0..n).map(|i| u32::from(i >= n / 2)).collect();
    let graph = knn(&x, 1, 1).unwrap();
    let score = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || metrics::graph_connectivity(&graph, &labels).unwrap())
        .unwrap()
        .join()
        .unwrap();
    // Label 0: a path, no cycle (largest component 1); label 1: n − 2 ↔ n − 1 (size 2).
    let half = (n / 2) as f64;
    assert_eq!(score, (1.0 / half + 2.0 / half) / 2.0);
}

#[test]
fn exact_roc_auc_equals_brute_force_pair_counting_with_ties() {
    let mut rng = Rng::new(20);
    for n in [2usize, 7, 100, 1000] {
        // Integer-valued scores force many ties; −0.0 and 0.0 must tie.
        let s: Vec<f64> = (0..n)
            .map(|_| (rng.below(7) as f64 - 3.0) * if rng.uniform() < 0.5 { 1.0 } else { -1.0 })
            .collect();
        let mut y: Vec<bool> = (0..n).map(|_| rng.uniform() < 0.4).collect();
        y[0] = true;
        y[1] = false;
        let (mut wins, mut pairs) = (0.0, 0.0);
        for i in 0..n {
            for j in 0..n {
                if y[i] && !y[j] {
                    pairs += 1.0;
                    wins += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        let got = roc_auc(&s, &y).unwrap();
        assert!(
            (got - wins / pairs).abs() < 1e-15,
            "n={n}: {got} vs {}",
            wins / pairs
        );
        let s32: Vec<f32> = s.iter().map(|&v| v as f32).collect();
        assert_eq!(roc_auc(&s32, &y).unwrap(), got);
    }
}

/// `n` cells in `dims` dimensions: 4 cell types apart, 3 batches shifted a little, and a
/// "pre-integration" embedding (scaled and moved): `(x, batches, labels, pre)`.
fn clustered_cells(seed: u64, n: usize, dims: usize) -> (Vec<f64>, Vec<u32>, Vec<u32>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let batches: Vec<u32> = (0..n).map(|_| rng.below(3) as u32).collect();
    let labels: Vec<u32> = (0..n).map(|_| rng.below(4) as u32).collect();
    let x: Vec<f64> = (0..n * dims)
        .map(|e| rng.normal() + labels[e / dims] as f64 * 2.0 + batches[e / dims] as f64 * 0.5)
        .collect();
    let pre: Vec<f64> = x.iter().map(|v| v * 1.5 + 0.1).collect();
    (x, batches, labels, pre)
}

#[test]
fn sparse_label_codes_score_as_their_dense_equivalents() {
    // Sample ids such as 4,000,000,000 beside small codes: re-coded once (order kept), so no
    // metric allocates by the largest code and every score is the same as with 0..L−1.
    let (n, dims) = (240, 6);
    let (x, batches, labels, pre) = clustered_cells(21, n, dims);
    let batch_ids = [7, 4_000_000_000, 4_000_000_001];
    let label_ids = [0, 9, 123_456_789, 4_294_967_295];
    let sparse_batches: Vec<u32> = batches.iter().map(|&b| batch_ids[b as usize]).collect();
    let sparse_labels: Vec<u32> = labels.iter().map(|&l| label_ids[l as usize]).collect();
    let score = |b: &[u32], l: &[u32]| {
        let pre = metrics::PreIntegration { values: &pre, dims };
        metrics::benchmark(&x, dims, b, Some(l), Some(pre), Default::default())
            .unwrap()
            .entries()
    };
    let dense = score(&batches, &labels);
    let sparse = score(&sparse_batches, &sparse_labels);
    assert_eq!(dense.len(), 16, "{dense:?}");
    assert_eq!(dense, sparse);
}

/// A metric undefined on valid input is left out with its reason, in words that give the
/// true counts; every other metric is computed as before, and an aggregate without all its
/// parts is `None`. Every cell in a batch of its own: no cell type can score its batch
/// silhouettes. Cell types of 8 cells: none reaches kBET's 10.
#[test]
fn benchmark_skips_what_is_undefined_and_scores_the_rest() {
    let (n, dims) = (200, 5);
    let (x, batches, labels, pre) = clustered_cells(35, n, dims);
    let pre = metrics::PreIntegration { values: &pre, dims };
    let config = metrics::BenchmarkConfig::default();
    let full = metrics::benchmark(&x, dims, &batches, Some(&labels), Some(pre), config).unwrap();
    assert!(full.skipped.is_empty(), "{:?}", full.skipped);
    assert_eq!(full.entries().len(), 16);

    let own: Vec<u32> = (0..n as u32).collect();
    let scores = metrics::benchmark(&x, dims, &own, Some(&labels), Some(pre), config).unwrap();
    let skipped: Vec<String> = scores.skipped.iter().map(|s| s.to_string()).collect();
    let why = "undefined here: none of the 4 cell types has its cells in 2 or more batches \
               without each cell in a batch of its own (200 cells in 200 batches)";
    assert_eq!(
        skipped,
        [format!("silhouette_batch ({why})"), format!("bras ({why})")]
    );
    for name in ["silhouette_batch", "bras", "batch_correction", "total"] {
        assert_eq!(scores.get(name), None, "{name}");
    }
    for name in [
        "ilisi",
        "kbet",
        "pcr_comparison",
        "clisi",
        "isolated_labels",
    ] {
        assert!(scores.get(name).is_some(), "{name}");
    }
    // the metrics that do not see the batches are unchanged
    for name in [
        "silhouette_label",
        "nmi_kmeans",
        "ari_kmeans",
        "clisi",
        "knn_accuracy",
    ] {
        assert_eq!(scores.get(name), full.get(name), "{name}");
    }
    // called on its own, the metric says the same
    let e = metrics::silhouette_batch(&x, dims, &labels, &own).unwrap_err();
    assert_eq!(e.to_string(), format!("silhouette_batch is {why}"));

    let small: Vec<u32> = (0..n as u32).map(|i| i / 8).collect();
    let scores = metrics::benchmark(&x, dims, &batches, Some(&small), None, config).unwrap();
    let skipped: Vec<String> = scores.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        skipped,
        [
            "kbet (undefined here: none of the 25 cell types has 10 or more cells in 2 or more \
          batches)"
        ]
    );
    assert!(scores.kbet_per_label.is_empty());
    assert!(scores.silhouette_batch.is_some() && scores.bras.is_some());

    // a pre-integration embedding without variance: nothing for PCR comparison to compare
    let flat = vec![1.0f64; n * dims];
    let flat = metrics::PreIntegration {
        values: &flat,
        dims,
    };
    let scores = metrics::benchmark(&x, dims, &batches, Some(&labels), Some(flat), config).unwrap();
    let skipped: Vec<String> = scores.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        skipped,
        ["pcr_comparison (undefined here: `embedding` has no variance)"]
    );
    assert_eq!(
        scores.entries().len(),
        13,
        "all but PCR comparison and two aggregates"
    );
}

/// Stage by stage: the pass over all pairs advances tile by tile to its total, every other
/// stage by its one step, and the scores are `benchmark`'s.
#[test]
fn benchmark_reports_its_stages_and_counts() {
    use std::sync::Mutex;
    #[derive(Default)]
    struct Record(Mutex<Vec<(&'static str, u64, u64)>>);
    impl metrics::Progress for Record {
        fn stage(&self, name: &'static str, total: u64) {
            self.0.lock().unwrap().push((name, total, 0));
        }
        fn advance(&self, units: u64) {
            self.0.lock().unwrap().last_mut().expect("a stage began").2 += units;
        }
    }
    let mut rng = Rng::new(4);
    let (n, dims) = (2 * BLOCK + 188, 3); // three blocks: 6 tiles
    let x: Vec<f64> = (0..n * dims).map(|_| rng.normal()).collect();
    let batches: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let record = Record::default();
    let config = metrics::BenchmarkConfig::default();
    let inputs = metrics::BenchmarkInputs {
        embedding: &x,
        dims,
        batches: &batches,
        labels: Some(&labels),
        pre_integration: None,
    };
    let scores = metrics::benchmark_with_progress(inputs, config, &record).unwrap();
    let plain = metrics::benchmark(&x, dims, &batches, Some(&labels), None, config).unwrap();
    assert_eq!(scores, plain);
    let stages = record.0.into_inner().unwrap();
    assert_eq!(stages[0], ("exact kNN graph and silhouettes", 6, 6));
    assert!(stages.len() >= 6, "{stages:?}");
    assert!(
        stages[1..]
            .iter()
            .all(|&(_, total, done)| total == 1 && done == 1),
        "{stages:?}"
    );
}

/// On the exact graph given from outside, every metric is `benchmark`'s; on a graph of
/// fewer neighbours, the metrics needing more are skipped, the others unchanged.
#[test]
fn benchmark_with_graph_equals_benchmark_on_the_exact_graph_and_skips_beyond_it() {
    let (n, dims) = (200, 5);
    let (x, batches, labels, pre) = clustered_cells(33, n, dims);
    let pre = metrics::PreIntegration { values: &pre, dims };
    let config = metrics::BenchmarkConfig::default();
    let inputs = metrics::BenchmarkInputs {
        embedding: &x,
        dims,
        batches: &batches,
        labels: Some(&labels),
        pre_integration: Some(pre),
    };
    let plain = metrics::benchmark(&x, dims, &batches, Some(&labels), Some(pre), config).unwrap();
    // The graph as another tool would hand it over: rows in index order, not by distance.
    let rows = |k: usize| -> Vec<Vec<(usize, f64)>> {
        let graph = knn(&x, dims, k).unwrap();
        (0..n)
            .map(|i| {
                let mut row: Vec<(usize, f64)> = graph
                    .neighbors(i)
                    .iter()
                    .map(|&j| j as usize)
                    .zip(graph.distances(i).iter().copied())
                    .collect();
                row.sort_by_key(|&(j, _)| j);
                row
            })
            .collect()
    };
    let wide = metrics::KnnGraph::from_neighbours(rows(89)).unwrap();
    let scores = metrics::benchmark_with_graph(inputs, &wide, config, &metrics::Silent).unwrap();
    assert_eq!(scores, plain);
    assert!(scores.skipped.is_empty());
    let narrow = metrics::KnnGraph::from_neighbours(rows(20)).unwrap();
    let scores = metrics::benchmark_with_graph(inputs, &narrow, config, &metrics::Silent).unwrap();
    let names: Vec<&str> = scores.skipped.iter().map(|s| s.metric).collect();
    assert_eq!(names, ["batch_entropy", "ilisi", "clisi", "kbet"]);
    assert_eq!(
        scores.skipped[3].to_string(),
        "kbet (needs 49 neighbours per cell; the graph has 20)"
    );
    for (name, value) in plain.entries() {
        let kept = scores.get(name);
        match name {
            "batch_entropy" | "ilisi" | "clisi" | "kbet" | "batch_correction"
            | "bio_conservation" | "total" => {
                assert_eq!(kept, None, "{name}")
            }
            _ => assert_eq!(kept, Some(value), "{name}"),
        }
    }
}

#[test]
fn graphs_from_elsewhere_are_checked() {
    use metrics::{Error, KnnGraph};
    let invalid = |rows: Vec<Vec<(usize, f64)>>| KnnGraph::from_neighbours(rows).unwrap_err();
    assert_eq!(invalid(vec![]), Error::Empty { input: "graph" });
    for (rows, cell, says) in [
        (vec![vec![(1, 1.0)], vec![]], 1, "no neighbour"),
        (vec![vec![(0, 1.0)], vec![(0, 1.0)]], 0, "names cell 0"),
        (vec![vec![(2, 1.0)], vec![(0, 1.0)]], 0, "names cell 2 of 2"),
        (vec![vec![(1, f64::NAN)], vec![(0, 1.0)]], 0, "distance NaN"),
        (vec![vec![(1, 1.0)], vec![(0, -1.0)]], 1, "distance -1"),
    ] {
        match invalid(rows) {
            Error::InvalidGraph { cell: at, reason } => {
                assert_eq!(at, cell, "{reason}");
                assert!(reason.contains(says), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    let mismatch = KnnGraph::from_neighbours(vec![vec![(1, 1.0)], vec![(0, 1.0)]]).unwrap();
    let x = [0.0f64, 1.0, 2.0];
    let inputs = metrics::BenchmarkInputs {
        embedding: &x,
        dims: 1,
        batches: &[0, 1, 0],
        labels: None,
        pre_integration: None,
    };
    let config = metrics::BenchmarkConfig::default();
    assert!(matches!(
        metrics::benchmark_with_graph(inputs, &mismatch, config, &metrics::Silent),
        Err(Error::LengthMismatch { input: "graph", .. })
    ));
}

/// Metrics left out by choice are not computed, not listed as skipped, and not parts of the
/// aggregates (the means of the metrics computed, as scib-metrics' `get_results`); every
/// other metric is bitwise what the full benchmark gives, from the graph-only pass when
/// the three silhouettes are left out.
#[test]
fn left_out_metrics_are_not_computed_and_the_rest_are_unchanged() {
    let (n, dims) = (300, 5);
    let (x, batches, labels, pre) = clustered_cells(41, n, dims);
    let pre = metrics::PreIntegration { values: &pre, dims };
    let full = metrics::benchmark(
        &x,
        dims,
        &batches,
        Some(&labels),
        Some(pre),
        Default::default(),
    )
    .unwrap();
    let left_out = [
        "kbet",
        "nmi_kmeans",
        "ari_kmeans",
        "silhouette_label",
        "isolated_labels",
        "silhouette_batch",
    ];
    let config = metrics::BenchmarkConfig {
        left_out: metrics::MetricSet::of(&left_out).unwrap(),
        ..Default::default()
    };
    let scores = metrics::benchmark(&x, dims, &batches, Some(&labels), Some(pre), config).unwrap();
    assert!(scores.skipped.is_empty(), "{:?}", scores.skipped);
    assert!(scores.kbet_per_label.is_empty());
    assert_eq!(scores.left_out.names().len(), left_out.len());
    // The same from the exact graph given (the path of a graph computed elsewhere).
    let inputs = metrics::BenchmarkInputs {
        embedding: &x,
        dims,
        batches: &batches,
        labels: Some(&labels),
        pre_integration: Some(pre),
    };
    let graph = metrics::knn(&x, dims, 89).unwrap();
    let given = metrics::benchmark_with_graph(inputs, &graph, config, &metrics::Silent).unwrap();
    assert_eq!(given, scores);
    for name in left_out {
        assert_eq!(scores.get(name), None, "{name}");
    }
    let computed = [
        "clisi",
        "bras",
        "ilisi",
        "graph_connectivity",
        "pcr_comparison",
        "batch_entropy",
        "knn_accuracy",
    ];
    for name in computed {
        let (got, want) = (scores.get(name).unwrap(), full.get(name).unwrap());
        assert_eq!(got.to_bits(), want.to_bits(), "{name}");
    }
    let mean = |names: &[&str]| {
        names.iter().map(|m| full.get(m).unwrap()).sum::<f64>() / names.len() as f64
    };
    let batch = mean(&["bras", "ilisi", "graph_connectivity", "pcr_comparison"]);
    assert_eq!(scores.batch_correction, Some(batch));
    assert_eq!(scores.bio_conservation, full.clisi);
    assert_eq!(scores.total, Some(0.4 * batch + 0.6 * full.clisi.unwrap()));

    // A whole group left out has no aggregate, nor a total; a graph scored alone does not
    // list a metric left out as needing an embedding.
    let config = metrics::BenchmarkConfig {
        left_out: metrics::MetricSet::of(&[
            "bras",
            "ilisi",
            "kbet",
            "graph_connectivity",
            "pcr_comparison",
        ])
        .unwrap(),
        ..Default::default()
    };
    let scores = metrics::benchmark(&x, dims, &batches, Some(&labels), Some(pre), config).unwrap();
    assert_eq!((scores.batch_correction, scores.total), (None, None));
    assert_eq!(scores.bio_conservation, full.bio_conservation);
    let graph = metrics::knn(&x, dims, 89).unwrap();
    let scores =
        metrics::benchmark_graph(&graph, &batches, Some(&labels), config, &metrics::Silent)
            .unwrap();
    let needs: Vec<&str> = scores.skipped.iter().map(|s| s.metric).collect();
    assert_eq!(
        needs,
        [
            "silhouette_label",
            "isolated_labels",
            "silhouette_batch",
            "nmi_kmeans",
            "ari_kmeans"
        ]
    );
}

#[test]
fn an_unknown_metric_name_is_an_error() {
    for name in ["KBET", "total", "kbet_per_label", ""] {
        let e = metrics::MetricSet::of(&[name]).unwrap_err();
        assert!(
            matches!(e, metrics::Error::UnknownMetric { .. }),
            "{name}: {e}"
        );
        assert!(e.to_string().contains("isolated_labels, nmi_kmeans"), "{e}");
    }
}
