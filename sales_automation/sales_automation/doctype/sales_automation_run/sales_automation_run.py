import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now
from frappe.utils import cint

from sales_automation.constants import FINAL_STATUSES

# what a person may still need to look at (Failed, Partially Completed) is kept
CLEARED_STATUSES = FINAL_STATUSES


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


def on_doctype_update():
	# the scheduler's and the drain's due-run queries, and every look-up of an order's runs
	frappe.db.add_index("Sales Automation Run", ["status", "next_retry_at"])
	frappe.db.add_index("Sales Automation Run", ["sales_order", "status"])
