"""What runs beside the gateway, never inside it: the demo, the launcher of simulators and gateway
processes on loopback (used by the demo, the benchmark and the end-to-end tests), and the national
portal's simulator."""
