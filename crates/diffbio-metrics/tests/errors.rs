//! One test per refused input of the exact metrics.

use diffbio_metrics::{roc_auc, Error};

#[test]
fn roc_auc_errors() {
    assert!(matches!(
        roc_auc(&[0.1f64, 0.2], &[true]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(roc_auc::<f64>(&[], &[]), Err(Error::Empty { .. })));
    assert!(matches!(
        roc_auc(&[0.1f32, 0.2], &[true, true]),
        Err(Error::SingleClass { .. })
    ));
    assert!(matches!(
        roc_auc(&[0.1f32, 0.2], &[false, false]),
        Err(Error::SingleClass { .. })
    ));
    assert!(matches!(
        roc_auc(&[0.1f64, f64::NAN], &[true, false]),
        Err(Error::NaN { index: 1, .. })
    ));
    // Infinite scores are allowed: they sort.
    assert_eq!(
        roc_auc(&[f64::INFINITY, f64::NEG_INFINITY], &[true, false]),
        Ok(1.0)
    );
}
