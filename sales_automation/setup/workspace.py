"""The Sales Automation workspace's safety-net warning: a Custom HTML Block the workspace places at its top
(workspace/sales_automation/sales_automation.json), made from safety_net_block/ on install and migrate."""

from pathlib import Path

import frappe

SAFETY_NET_BLOCK = "Sales Automation Safety Net"
SOURCE = Path(__file__).with_name("safety_net_block")


def ensure_safety_net_block():
	"""The block as this version of the app ships it: made, or its html, script and style brought up to
	date (a change made to it on the site is replaced, as a migrate replaces the workspace's)."""
	values = {
		"html": (SOURCE / "block.html").read_text(),
		"script": (SOURCE / "block.js").read_text(),
		"style": (SOURCE / "block.css").read_text(),
		"private": 0,
	}
	if not frappe.db.exists("Custom HTML Block", SAFETY_NET_BLOCK):
		block = frappe.get_doc({"doctype": "Custom HTML Block", "name": SAFETY_NET_BLOCK, **values})
		# site set-up, not a user's action (install and migrate)
		block.insert(ignore_permissions=True)
		return
	block = frappe.get_doc("Custom HTML Block", SAFETY_NET_BLOCK)
	if any(block.get(field) != value for field, value in values.items()):
		block.update(values)
		block.save(ignore_permissions=True)
