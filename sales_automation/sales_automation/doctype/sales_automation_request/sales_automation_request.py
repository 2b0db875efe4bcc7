import frappe
from frappe.model.document import Document
from frappe.query_builder import Interval
from frappe.query_builder.functions import Now
from frappe.utils import cint


class SalesAutomationRequest(Document):
	@staticmethod
	def clear_old_logs(days: int = 30):
		"""Log Settings' daily clearing: idempotency keys older than `days` (Log Settings, 30 by default);
		a repeat after that is a new call."""
		Request = frappe.qb.DocType("Sales Automation Request")
		frappe.qb.from_(Request).delete().where(
			Request.modified < (Now() - Interval(days=cint(days) or 30))
		).run()


def on_doctype_update():
	# the list's sort; the clearing reads modified (indexed by Frappe) and a look-up goes by name
	frappe.db.add_index("Sales Automation Request", ["creation"])
