import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now
from frappe.utils import cint

from sales_automation.constants import FINAL_STATUSES

# what a person may still need to look at (Failed, Partially Completed) is kept
CLEARED_STATUSES = FINAL_STATUSES

# the list's columns: the order (title), tags, the status indicator, then the five in_list_view fields
# (customer, rule, trigger, started, duration); Frappe shows only 4 to 6 where List View Settings
# set no number
LIST_VIEW_COLUMNS = 8


class SalesAutomationRun(Document):
	@staticmethod
	def clear_old_logs(days: int | None = None):
		"""Log Settings' daily clearing: finished runs older than Sales Automation Settings' "Keep
		Completed Runs For" (Log Settings' own days only when that is empty), with their steps."""
		days = cint(frappe.db.get_single_value("Sales Automation Settings", "log_retention_days")) or cint(
			days
		)
		if days <= 0:
			return
		Run = frappe.qb.DocType("Sales Automation Run")
		Step = frappe.qb.DocType("Sales Automation Run Step")
		old = (
			frappe.qb.from_(Run)
			.select(Run.name)
			.where(Run.status.isin(CLEARED_STATUSES) & (Run.modified < (Now() - Interval(days=days))))
		)
		frappe.qb.from_(Step).delete().where(
			(Step.parenttype == "Sales Automation Run") & Step.parent.isin(old)
		).run()
		frappe.qb.from_(Run).delete().where(
			Run.status.isin(CLEARED_STATUSES) & (Run.modified < (Now() - Interval(days=days)))
		).run()


def after_doctype_insert():
	show_every_list_column()


def show_every_list_column():
	"""List View Settings that show all the run list's columns, unless the site has its own already."""
	if frappe.db.exists("List View Settings", "Sales Automation Run"):
		return
	list_view_settings = frappe.new_doc("List View Settings")
	list_view_settings.name = "Sales Automation Run"
	list_view_settings.total_fields = str(LIST_VIEW_COLUMNS)
	# site set-up, not a user's action (install and migrate)
	list_view_settings.insert(ignore_permissions=True)


def on_doctype_update():
	# the scheduler's and the drain's due-run queries, and every look-up of an order's runs
	frappe.db.add_index("Sales Automation Run", ["status", "next_retry_at"])
	frappe.db.add_index("Sales Automation Run", ["sales_order", "status"])
	# creation has no index of its own: the run list's sort and the workspace chart's days (covering its
	# status), the number cards' "status today", an order's newest run (the stuck-orders report)
	frappe.db.add_index("Sales Automation Run", ["creation", "status"])
	frappe.db.add_index("Sales Automation Run", ["status", "creation"])
	frappe.db.add_index("Sales Automation Run", ["sales_order", "creation"])
