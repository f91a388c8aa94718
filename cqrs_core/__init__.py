"""The CQRS core: event store, command and query buses, projections, sagas. Knows no domain."""
