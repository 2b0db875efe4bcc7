from frappe.model.document import Document


class SalesAutomationSettings(Document):
	pass
