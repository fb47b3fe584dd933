/* session.c — being written */
