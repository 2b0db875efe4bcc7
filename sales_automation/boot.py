"""What the desk gets at login: the app's shared names (constants.for_desk), in frappe.boot.sales_automation."""

from sales_automation.constants import for_desk


def boot_session(bootinfo):
	bootinfo.sales_automation = for_desk()
