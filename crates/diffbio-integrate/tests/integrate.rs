//! The pieces of `examples/integrate`: data generation, reading, scaling, the PCA
//! projection, and a training step that lowers the objective.

use candle_core::{Device, Tensor};
use diffbio_integrate::data::{Dataset, Simulation};
use diffbio_integrate::model::{self, TrainConfig, Trainer};
use diffbio_integrate::plot;
use diffbio_metrics::{batch_entropy, knn, knn_accuracy};

fn small() -> Simulation {
    Simulation {
        n_cells: 600,
        n_batches: 3,
        n_celltypes: 5,
        dims: 20,
        biological_dims: 6,
        seed: 11,
    }
}

#[test]
fn simulation_is_seeded_and_well_formed() {
    let sim = small();
    let a = sim.generate();
    assert_eq!(a.x.len(), 600 * 20);
    assert_eq!(a.dims, 20);
    assert!(a.x.iter().all(|v| v.is_finite()));
    assert!(a.batch.iter().all(|&b| b < 3));
    assert!(a.celltype.as_deref().unwrap().iter().all(|&t| t < 5));
    assert_eq!(a.n_batches(), 3);
    let b = sim.generate();
    assert_eq!(a.x, b.x);
    assert_eq!(a.celltype, b.celltype);
    let c = Simulation { seed: 12, ..sim }.generate();
    assert_ne!(a.x, c.x);
    // every cell type is present, in unequal proportions
    let counts: Vec<usize> = (0..5)
        .map(|t| {
            a.celltype
                .as_deref()
                .unwrap()
                .iter()
                .filter(|&&c| c == t)
                .count()
        })
        .collect();
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
    assert!(counts.iter().max() > counts.iter().min(), "{counts:?}");
}

#[test]
fn simulation_has_a_batch_effect_and_separable_cell_types() {
    let data = small().generate();
    let graph = knn(&data.x, data.dims, 30).unwrap();
    let entropy = batch_entropy(&graph, &data.batch).unwrap().mean;
    let accuracy = knn_accuracy(
        &graph.truncate(15).unwrap(),
        data.celltype.as_deref().unwrap(),
    )
    .unwrap()
    .mean;
    assert!(
        entropy < 0.3,
        "batches should be separated before integration: {entropy}"
    );
    assert!(
        accuracy > 0.95,
        "cell types should be separable: {accuracy}"
    );
}

#[test]
fn standardised_is_centred_with_unit_mean_square() {
    let data = small().generate();
    let z = data.standardised();
    let n = data.n_cells() as f64;
    for dim in 0..data.dims {
        let mean: f64 = z
            .iter()
            .skip(dim)
            .step_by(data.dims)
            .map(|&v| v as f64)
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-5, "dim {dim}: {mean}");
    }
    let mean_square = z.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / z.len() as f64;
    assert!((mean_square - 1.0).abs() < 1e-5);
}

#[test]
fn read_dir_reads_npy_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = small().generate();
    let dev = Device::Cpu;
    Tensor::from_vec(data.x.clone(), (data.n_cells(), data.dims), &dev)
        .unwrap()
        .write_npy(dir.path().join("X_pca.npy"))
        .unwrap();
    let codes = |v: &[u32]| {
        Tensor::new(v, &dev)
            .unwrap()
            .to_dtype(candle_core::DType::I32)
            .unwrap()
    };
    codes(&data.batch)
        .write_npy(dir.path().join("batch.npy"))
        .unwrap();
    let err = Dataset::read_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("celltype.npy: no such file"), "{err}");
    codes(data.celltype.as_deref().unwrap())
        .write_npy(dir.path().join("celltype.npy"))
        .unwrap();
    let read = Dataset::read_dir(dir.path()).unwrap();
    assert_eq!(read.x, data.x);
    assert_eq!(read.batch, data.batch);
    assert_eq!(read.celltype, data.celltype);
}

#[test]
fn principal_components_find_the_dominant_axes() {
    // Variance 9 along (1, 1, 0)/√2, 1 along (0, 0, 1), none along (1, −1, 0)/√2.
    let mut x = Vec::new();
    for i in 0..200 {
        let (a, b) = (
            3.0 * ((i % 20) as f32 - 9.5) / 5.77,
            ((i / 20) as f32 - 4.5) / 2.87,
        );
        x.extend_from_slice(&[a / 2f32.sqrt() + 1.0, a / 2f32.sqrt() - 2.0, b]);
    }
    let pcs = plot::principal_components(&x, 3);
    let var = |f: fn(&(f32, f32)) -> f32| pcs.iter().map(|p| f(p).powi(2)).sum::<f32>() / 200.0;
    assert!((var(|p| p.0) - 9.0).abs() < 0.1, "{}", var(|p| p.0));
    assert!((var(|p| p.1) - 1.0).abs() < 0.05, "{}", var(|p| p.1));
    for (row, p) in x.chunks(3).zip(&pcs) {
        let along_first = ((row[0] - 1.0) + (row[1] + 2.0)) / 2f32.sqrt();
        assert!((p.0.abs() - along_first.abs()).abs() < 1e-3);
    }
}

fn trainer(data: &Dataset, config: TrainConfig) -> Trainer {
    let dev = Device::Cpu;
    let x = Tensor::from_vec(data.standardised(), (data.n_cells(), data.dims), &dev).unwrap();
    let batch = Tensor::new(data.batch.as_slice(), &dev).unwrap();
    Trainer::new(x, batch, data.n_batches(), config).unwrap()
}

#[test]
fn one_training_step_lowers_the_objective() {
    let data = small().generate();
    let config = TrainConfig {
        batch_size: data.n_cells(),
        ..TrainConfig::default()
    };
    let mut trainer = trainer(&data, config);
    let before = trainer.evaluate().unwrap();
    let stepped = trainer.step().unwrap();
    let total = |l: &model::Losses| l.total.to_scalar::<f32>().unwrap();
    assert!(
        (total(&stepped) - total(&before)).abs() < 1e-5,
        "the step starts where evaluate is"
    );
    let after = trainer.evaluate().unwrap();
    assert!(
        total(&after) < total(&before),
        "{} !< {}",
        total(&after),
        total(&before)
    );
    assert!(before.mixing < 0.0 && before.mixing >= -1.0);
}

#[test]
fn training_is_reproducible_and_mixes_batches() {
    let data = small().generate();
    let config = TrainConfig {
        steps: 60,
        batch_size: 256,
        ..TrainConfig::default()
    };
    let run = || {
        let mut t = trainer(&data, config);
        for _ in 0..config.steps {
            t.step().unwrap();
        }
        t.embed_all()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let z = run();
    assert_eq!(z, run(), "seeded runs must agree");
    let graph = knn(&z, config.latent_dims, 30).unwrap();
    let before = batch_entropy(&knn(&data.x, data.dims, 30).unwrap(), &data.batch)
        .unwrap()
        .mean;
    let after = batch_entropy(&graph, &data.batch).unwrap().mean;
    assert!(after > before + 0.3, "{before} -> {after}");
    let accuracy = knn_accuracy(
        &graph.truncate(15).unwrap(),
        data.celltype.as_deref().unwrap(),
    )
    .unwrap()
    .mean;
    assert!(accuracy > 0.9, "{accuracy}");
}

#[test]
fn data_parallel_training_follows_single_process_training_step_for_step() {
    let data = small().generate();
    let config = TrainConfig {
        steps: 6,
        batch_size: 250,
        hidden_dims: 32,
        mixing: diffbio_core::BatchMixingConfig {
            n_neighbors: 10,
            ..TrainConfig::default().mixing
        },
        ..TrainConfig::default()
    };
    let objective = |l: &model::Losses| l.reconstruction + 0.2 * l.mixing;
    let mut single = trainer(&data, config);
    let want: Vec<f32> = (0..config.steps)
        .map(|_| objective(&single.step().unwrap()))
        .collect();
    let curves: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = diffbio_core::dist::ThreadComm::group(3)
            .into_iter()
            .map(|comm| {
                let data = &data;
                s.spawn(move || {
                    let mut t = trainer(data, config);
                    (0..config.steps)
                        .map(|_| objective(&t.step_sharded(&comm).unwrap()))
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for curve in curves {
        for (step, (got, want)) in curve.iter().zip(&want).enumerate() {
            assert!((got - want).abs() < 1e-5, "step {step}: {got} vs {want}");
        }
    }
    // The curve moves, so equal curves mean equal steps.
    assert!(want[0] - want[5] > 0.01, "{want:?}");
}

#[test]
fn reads_an_anndata_file_as_its_npy_twins() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../diffbio-io/tests/data/h5ad");
    let data = Dataset::read_h5ad(
        &dir.join("cells_lzf.h5ad"),
        "X_pca",
        "batch",
        Some("cell_type"),
    )
    .unwrap();
    let x = diffbio_io::read_embedding(&dir.join("X_pca.npy")).unwrap();
    assert_eq!((data.x, data.dims), (x.values, x.dims));
    let codes = |name: &str| diffbio_io::read_labels(&dir.join(name), 150, "codes").unwrap();
    assert_eq!(data.batch, codes("batch.npy"));
    assert_eq!(data.celltype, Some(codes("cell_type.npy")));
    let unlabelled = Dataset::read_h5ad(&dir.join("cells.h5ad"), "X_scvi", "donor", None).unwrap();
    assert_eq!((unlabelled.dims, unlabelled.celltype), (6, None));
    let err = Dataset::read_h5ad(&dir.join("cells.h5ad"), "X_umap", "batch", None).unwrap_err();
    assert!(err.to_string().contains("obsm has no `X_umap`"), "{err}");
}
