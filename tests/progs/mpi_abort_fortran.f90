! mpi_abort_fortran RANK CODE: RANK calls MPI_ABORT(MPI_COMM_WORLD, CODE) from
! fortran_abort_site (Open MPI's mpi_abort_ reaches the library through
! PMPI_Abort); the others wait in MPI_Barrier.
subroutine fortran_abort_site(code)
  use mpi
  implicit none
  integer, intent(in) :: code
  integer :: ierr
  call MPI_Abort(MPI_COMM_WORLD, code, ierr)
  print *, 'MPI_Abort returned', ierr
end subroutine fortran_abort_site

program mpi_abort_fortran
  use mpi
  implicit none
  integer :: ierr, rank, who, code
  character(len=16) :: arg

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  call get_command_argument(1, arg)
  read (arg, *) who
  call get_command_argument(2, arg)
  read (arg, *) code
  if (rank == who) call fortran_abort_site(code)
  call MPI_Barrier(MPI_COMM_WORLD, ierr)
  call MPI_Finalize(ierr)
end program mpi_abort_fortran
