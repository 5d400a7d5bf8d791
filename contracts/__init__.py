"""What workflows, activities and starters agree on: IDs, search attributes, inputs and results, the clock."""
