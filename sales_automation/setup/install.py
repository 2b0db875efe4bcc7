import frappe

SETTINGS_DEFAULTS = {
	"enabled": 1,
	"default_execution_mode": "Background",
	"max_attempts": 3,
	"retry_backoff_seconds": 60,
	"log_retention_days": 90,
	"stuck_after_minutes": 30,
}


def after_install():
	"""Store the Settings defaults, so the engine never reads an empty single."""
	stored = frappe.db.get_singles_dict("Sales Automation Settings")
	for fieldname, value in SETTINGS_DEFAULTS.items():
		if stored.get(fieldname) in (None, ""):
			frappe.db.set_single_value("Sales Automation Settings", fieldname, value)
