"""Exchange clients: one module per exchange behind one interface (see base.ExchangeClient)."""
