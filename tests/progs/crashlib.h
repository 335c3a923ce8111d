#ifndef CRASHLIB_H
#define CRASHLIB_H
int crashlib_store(int *slot, int value);
#endif
