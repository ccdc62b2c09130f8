"""Justice plugin: civil status (hộ tịch) registrations over the provincial data-sharing envelope."""
