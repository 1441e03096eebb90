"""Training constructs: one `AdapterTrainingJob` per `training.pipelines` entry (identity, S3 mounts, the
suspended Kueue-admitted CronJob template, its NetworkPolicy)."""
