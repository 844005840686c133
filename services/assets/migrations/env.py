from mif_assets.models import Base
from mif_common.events.tables import event_metadata
from mif_common.migrations import run_env

run_env([Base.metadata, event_metadata], schema="assets")
