from mif_common.events.tables import event_metadata
from mif_common.migrations import run_env
from mif_reports.models import Base

run_env([Base.metadata, event_metadata], schema="reports")
