# roads_fortify.c is roads.c built with _FORTIFY_SOURCE=2: rebuilt when roads.c changes.
$(BUILD)/clients/roads_fortify: tests/clients/roads.c
