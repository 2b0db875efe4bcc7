import frappe
from frappe.model.document import Document

from sales_automation import engine

RESUME_ROLES = ("System Manager", "Sales Manager")


class SalesAutomationRun(Document):
	@frappe.whitelist(methods=["POST"])
	def resume(self):
		"""Retry / Resume: continue from the first step not done."""
		frappe.only_for(RESUME_ROLES)
		self.check_permission("write")
		engine.resume(self)
		return self.as_dict()
