use retainwise_model::{train::TrainingTable, GbdtSettings, TrainParams};
fn main() {
    let t = TrainingTable::read_csv(std::fs::File::open("/work/shared/data/telco-customer-churn.csv").unwrap()).unwrap();
    for depth in [2usize, 3, 4] {
        for lr in [0.03f32, 0.05] {
            for rounds in [200usize, 300, 500] {
                for (sub, col) in [(1.0f32, 1.0f64), (0.8, 1.0), (0.8, 0.8)] {
                    for mlw in [5.0f32, 20.0] {
                    let mut p = TrainParams::new("Churn");
                    p.id_column = Some("customerID".into());
                    p.gbdt = GbdtSettings { rounds, learning_rate: lr, max_depth: depth, subsample: sub, colsample_bytree: col, min_leaf_weight: mlw, ..GbdtSettings::default() };
                    let (_, r) = p.check().unwrap().fit(&t).unwrap();
                    let cv = &r.cross_validation;
                    println!("depth {depth} lr {lr} rounds {rounds} sub {sub} col {col} mlw {mlw}: auc {:.4} ±{:.4} ll {:.4} brier {:.4}", cv.roc_auc.mean, cv.roc_auc.std, cv.log_loss.mean, cv.brier.mean);
                    }
                }
            }
        }
    }
}
