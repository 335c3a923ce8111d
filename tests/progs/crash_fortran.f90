! crash_fortran R...: the ranks given as arguments write through a null
! pointer after MPI_Init (the Fortran binding reaches the library through
! PMPI_Init); the others wait in MPI_Allreduce.
program crash_fortran
  use mpi
  use crash_state
  implicit none
  integer :: ierr, rank, i, r, one, total
  character(len=16) :: arg

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  do i = 1, command_argument_count()
    call get_command_argument(i, arg)
    read (arg, *) r
    if (r == rank) call fortran_bad_fn(rank + 1)
  end do
  one = 1
  call MPI_Allreduce(one, total, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD, ierr)
  call MPI_Finalize(ierr)
end program crash_fortran
