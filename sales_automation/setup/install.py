import frappe

from sales_automation.sales_automation.doctype.sales_automation_request import sales_automation_request
from sales_automation.sales_automation.doctype.sales_automation_run import sales_automation_run
from sales_automation.setup.scheduler import repair_job_schedules
from sales_automation.setup.workspace import ensure_safety_net_block

SETTINGS_DEFAULTS = {
	"enabled": 1,
	"default_execution_mode": "Background",
	"max_attempts": 3,
	"retry_backoff_seconds": 60,
	"log_retention_days": 90,
	"stuck_after_minutes": 30,
}


def after_install():
	"""Store the Settings defaults, so the engine never reads an empty single; the app's jobs due."""
	stored = frappe.db.get_singles_dict("Sales Automation Settings")
	for fieldname, value in SETTINGS_DEFAULTS.items():
		if stored.get(fieldname) in (None, ""):
			frappe.db.set_single_value("Sales Automation Settings", fieldname, value)
	# a reinstall finds the jobs as they were, perhaps made on another time zone's clock
	repair_job_schedules()
	ensure_safety_net_block()


def after_migrate():
	"""The app's jobs due, whatever time zone the site had when they were made; the indexes in place."""
	repair_job_schedules()
	ensure_safety_net_block()
	# Frappe runs on_doctype_update only when it imports a changed DocType: a site that had the DocTypes
	# before an index was added gets it here (add_index skips an index that exists)
	sales_automation_run.on_doctype_update()
	sales_automation_request.on_doctype_update()
