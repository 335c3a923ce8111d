! waits_fortran RANK SECONDS: RANK sleeps SECONDS outside MPI while the others
! wait in MPI_BARRIER (Open MPI's mpi_barrier_ calls PMPI_Barrier, which the
! library interposes: tests/scenarios/hang.py, fortran_barrier).
program waits_fortran
  use mpi
  implicit none
  integer :: ierr, rank, who, seconds
  character(len=16) :: arg

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call get_command_argument(1, arg)
  read (arg, *) who
  call get_command_argument(2, arg)
  read (arg, *) seconds
  if (rank == who) call sleep(seconds)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  print '(a,i0,a)', 'rank ', rank, ' done'
  call MPI_Finalize(ierr)
end program waits_fortran
