/* deliver.c — being written */
