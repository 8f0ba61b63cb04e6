"""TrainFunction (container image with TensorFlow): runs one training job, started asynchronously."""

from aws_lambda_powertools import Logger

from tailor.bootstrap import model_registry, object_store, state_table, training_jobs
from tailor.core.observability import metrics
from tailor.training.runner import run_job

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False, capture_cold_start_metric=True)  # TrainingDuration, TrainingJobsFailed
def lambda_handler(event, context):
    logger.append_keys(job_id=event.get("job_id"))
    return run_job(event, jobs=training_jobs(), registry=model_registry(), store=object_store(),
                   state=state_table())
