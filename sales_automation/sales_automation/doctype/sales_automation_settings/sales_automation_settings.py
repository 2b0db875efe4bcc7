import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils.background_jobs import get_queues_timeout


class SalesAutomationSettings(Document):
	def validate(self):
		self.queue = (self.queue or "").strip() or "default"
		self.bulk_queue = (self.bulk_queue or "").strip() or None
		known = get_queues_timeout()  # default, short, long and the bench's `workers` in its site config
		for fieldname in ("queue", "bulk_queue"):
			value = self.get(fieldname)
			if value and value not in known:
				frappe.throw(
					_(
						"{0}: {1} is not a queue of this bench (known: {2}); add it under workers in common_site_config.json"
					).format(frappe.bold(_(self.meta.get_label(fieldname))), value, ", ".join(sorted(known))),
					title=_("Unknown Queue"),
				)
