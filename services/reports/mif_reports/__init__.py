"""MIF reports service: KPIs from a read model fed by the other services' events, and exports."""
