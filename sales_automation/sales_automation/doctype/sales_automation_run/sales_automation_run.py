import frappe
from frappe.model.document import Document

from sales_automation.api.runs import resume_run


class SalesAutomationRun(Document):
	@frappe.whitelist(methods=["POST"])
	def resume(self):
		"""The form's Resume button: the same action as the API's resume_run."""
		resume_run(self.name)
		self.reload()
		return self.as_dict()
