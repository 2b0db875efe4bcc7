from sales_automation.setup.scheduler import after_time_zone_change


def on_update(doc, method=None):
	if not doc.has_value_changed("time_zone"):
		return
	# a zone behind the old one puts the jobs' last runs in the future, where the scheduler holds them
	after_time_zone_change()
