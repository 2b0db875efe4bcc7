from frappe.model.document import Document


class SalesAutomationRunStep(Document):
	pass
