from frappe.model.document import Document


class SalesAutomationRequest(Document):
	pass
