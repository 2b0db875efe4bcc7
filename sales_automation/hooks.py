app_name = "sales_automation"
app_title = "Sales Automation"
app_publisher = "sales_automation developers"
app_description = "Order-to-cash automation for ERPNext: rule-driven delivery, invoicing and payment"
app_email = "developers@sales-automation.invalid"
app_license = "mit"

# org/repo form: a bare app name makes install-app look the app up on GitHub
required_apps = ["frappe/erpnext"]

# DocType controllers get typed field annotations when saved in developer mode
export_python_type_annotations = True

after_install = "sales_automation.setup.install.after_install"
# the app's Scheduled Job Types due, whatever the site's time zone was when they were made (issue 26)
after_migrate = "sales_automation.setup.install.after_migrate"
before_tests = "sales_automation.tests.before_tests"

# the statuses, their colours and the managing roles, for the desk's scripts (frappe.boot.sales_automation)
boot_session = "sales_automation.boot.boot_session"

# the automation's status and actions on ERPNext's Sales Order form and list
doctype_js = {"Sales Order": "public/js/sales_order.js"}
doctype_list_js = {"Sales Order": "public/js/sales_order_list.js"}

# Retry-After on the endpoints' 503 (a database that stayed busy through their retries)
after_request = ["sales_automation.api.http.after_request"]

doc_events = {
	"Sales Order": {
		"on_submit": "sales_automation.overrides.sales_order.on_submit",
		"on_cancel": "sales_automation.overrides.sales_order.on_cancel",
	},
	# waiting orders continue when what they wait for arrives (continuation.py)
	"Stock Ledger Entry": {"on_submit": "sales_automation.continuation.on_stock_ledger_entry"},
	"Delivery Note": {"on_submit": "sales_automation.continuation.on_order_document"},
	"Sales Invoice": {"on_submit": "sales_automation.continuation.on_order_document"},
	"Payment Entry": {"on_submit": "sales_automation.continuation.on_order_document"},
	"Purchase Order": {"on_change": "sales_automation.continuation.on_purchase_order_change"},
	# a new time zone can put the scheduled jobs' last runs in the future
	"System Settings": {"on_update": "sales_automation.overrides.system_settings.on_update"},
}

scheduler_events = {
	"cron": {
		"* * * * *": ["sales_automation.background.retry_due_runs"],
		"*/5 * * * *": ["sales_automation.continuation.sweep"],
	},
}

# Log Settings clears both daily; runs are kept as long as Sales Automation Settings says (this 90 is
# only Log Settings' default, used when that setting is empty)
default_log_clearing_doctypes = {
	"Sales Automation Run": 90,
	"Sales Automation Request": 30,
}
